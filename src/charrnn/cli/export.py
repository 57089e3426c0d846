"""`charrnn export`: a trained model in another format (ONNX, the onnx extra)."""

from __future__ import annotations

from ..errors import CharRNNError
from ..runs.rundir import load_model
from .common import add_model_flags


def add_export(commands) -> None:
    p = commands.add_parser("export", help="write a trained model in another format (ONNX)")
    add_model_flags(p)
    p.add_argument("--onnx", required=True, metavar="FILE", help="the ONNX file to write (the onnx extra)")
    p.set_defaults(run=cmd_export)


def cmd_export(args) -> int:
    from ..model.export import EXPORTER, export_onnx

    if args.also:
        raise CharRNNError("export writes one model: export each member of an ensemble on its own")
    if args.device not in ("cpu", "auto"):
        raise CharRNNError("export runs on the CPU; drop --device")
    model, vocab, info = load_model(args.path, args.checkpoint, "cpu")
    out = export_onnx(model, vocab, args.onnx)
    print(
        f"wrote {out} from {info.name} with {EXPORTER}; inputs ids (batch, time) and the state, outputs logits and the state"
    )
    return 0
