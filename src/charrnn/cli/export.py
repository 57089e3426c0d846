"""`charrnn export`: a trained model in another format: ONNX (the onnx extra), or a static web page
and JavaScript module that generate in the browser (`--web`)."""

from __future__ import annotations

from pathlib import Path

from ..errors import CharRNNError
from ..runs.rundir import load_model
from ..web.export import QUANTIZATIONS, WEIGHTS_FILE, export_web
from .common import add_model_flags


def add_export(commands) -> None:
    p = commands.add_parser("export", help="write a trained model in another format (ONNX, or a web page)")
    add_model_flags(p)
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--onnx", metavar="FILE", help="the ONNX file to write (the onnx extra)")
    target.add_argument(
        "--web",
        metavar="DIR",
        help="a folder any static host serves: a page and charrnn.js that generate in the browser",
    )
    p.add_argument("--quantize", choices=QUANTIZATIONS, default="fp32",
                   help="--web: the weights' precision in the download (default fp32)")  # fmt: skip
    p.add_argument("--single-file", action="store_true",
                   help="--web: one HTML file holding everything, that also opens from disk (give FILE.html)")  # fmt: skip
    p.set_defaults(run=cmd_export)


def cmd_export(args) -> int:
    if args.also:
        raise CharRNNError("export writes one model: export each member of an ensemble on its own")
    if args.device not in ("cpu", "auto"):
        raise CharRNNError("export runs on the CPU; drop --device")
    if args.onnx and (args.quantize != "fp32" or args.single_file):
        raise CharRNNError("--quantize and --single-file are for --web")
    if args.web and args.single_file and not args.web.endswith(".html"):
        raise CharRNNError(f"--single-file writes one HTML file: give --web a name ending in .html, not {args.web}")
    model, vocab, info = load_model(args.path, args.checkpoint, "cpu")
    return _web(args, model, vocab, info) if args.web else _onnx(args, model, vocab, info)


def _onnx(args, model, vocab, info) -> int:
    from ..model.export import EXPORTER, export_onnx

    out = export_onnx(model, vocab, args.onnx)
    print(
        f"wrote {out} from {info.name} with {EXPORTER}; inputs ids (batch, time) and the state, outputs logits and the state"
    )
    return 0


def _web(args, model, vocab, info) -> int:
    card = {
        "name": Path(args.path).resolve().name,
        "checkpoint": info.name,
        "step": info.step,
        "val_loss": info.val_loss,
    }
    out, _ = export_web(model, vocab, args.web, args.quantize, card, args.single_file)
    if args.single_file:
        print(
            f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, {args.quantize}) from {info.name}: open it in a browser, from disk or any host"
        )
        return 0
    weights = (out / WEIGHTS_FILE).stat().st_size
    print(f"wrote {out}/ (index.html, charrnn.js, {WEIGHTS_FILE} {weights / 1e6:.2f} MB {args.quantize}, manifest.json) "
          f"from {info.name}; try it: python -m http.server -d {out}")  # fmt: skip
    return 0
