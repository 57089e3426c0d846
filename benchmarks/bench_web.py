"""The web export in headless Chromium (Debian's, through Playwright), pages served by `python -m
http.server` on a loopback port:

1. Characters a second for 1x512 and 2x512 LSTMs (anna.txt's vocabulary): charrnn.js in its worker with
   the WebAssembly SIMD kernel and with plain JS, onnxruntime-web (single-threaded WASM, the page not
   being cross-origin isolated) stepping the ONNX export in the page's thread, and beside them, in the
   same run, the Python sampler at batch 1 (what `charrnn sample` runs), all drawing with temperature 1.
2. With --run RUN (the default model, e.g. from `charrnn train anna.txt`): time from navigation to the
   first generated character for fp32 and int8 (a fresh browser context each time, median of 3), the
   bytes each quantisation downloads, the validation loss of each quantisation in Python (dequantised
   weights, the run's whole validation split) and in the browser (the split's first --score-chars
   characters, Python beside it on the same ones), and how often a seeded browser sample differs from
   Python's (float sums in another order can move a draw that falls within ~1e-7 of a boundary).

    python benchmarks/bench_web.py [--run RUN] [--chars 3000] [--repeats 5] [--seeds 50] [--sample-chars 1000]

onnxruntime-web is fetched with npm into benchmarks/.cache/ (ignored by git) the first time; the
benchmark runs without it if npm cannot reach it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import torch

import charrnn
from charrnn.data.dataset import run_part
from charrnn.data.vocab import Vocab
from charrnn.generate.evaluation import evaluate
from charrnn.generate.sampler import Sampler
from charrnn.model.network import CharRNN, ModelConfig
from charrnn.web.export import ASSETS, QUANTIZATIONS, WEIGHTS_FILE, export_web

from common import CORPORA, ROOT, print_table, save_results

CACHE = ROOT / "benchmarks" / ".cache"
ORT_VERSION = "1.31.1"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
PRIME = "The "

# onnxruntime-web stepping the ONNX export one character at a time, drawing with charrnn.js's picker.
ORT_PAGE = """<!doctype html><script type="module">
import * as ort from "./ort/ort.wasm.min.mjs";
import { pickNext } from "./charrnn/picking.js";
import { Random } from "./charrnn/random.js";
ort.env.wasm.numThreads = 1;
ort.env.wasm.wasmPaths = new URL("./ort/", location.href).href;
let session, names, hidden, layers;
window.openOrt = async (model, stateNames, width, depth) => {
  session = await ort.InferenceSession.create(model, { executionProviders: ["wasm"] });
  [names, hidden, layers] = [stateNames, width, depth];
};
window.runOrt = async (firstId, chars) => {
  const zeros = () => new ort.Tensor("float32", new Float32Array(layers * hidden), [layers, 1, hidden]);
  let feeds = Object.fromEntries(names.map((n) => [n, zeros()]));
  const random = new Random(1), options = { temperature: 1, topK: 0, topP: 1, greedy: false };
  let id = firstId;
  const start = performance.now();
  for (let i = 0; i < chars; i++) {
    const out = await session.run({ ids: new ort.Tensor("int64", BigInt64Array.from([BigInt(id)]), [1, 1]), ...feeds });
    feeds = Object.fromEntries(names.map((n) => [n, out[n + "_n"]]));
    id = pickNext(out.logits.data, options, random);
  }
  return chars / ((performance.now() - start) / 1000);
};
window.ready = true;
</script>"""


def static_server(root: Path) -> tuple[subprocess.Popen, str]:
    argv = [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", str(root)]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    url = process.stdout.readline().split("(")[1].split(")")[0].rstrip("/")
    time.sleep(0.3)
    return process, url


def fetch_ort() -> Path | None:
    dist = CACHE / "node_modules" / "onnxruntime-web" / "dist"
    if not dist.exists() and shutil.which("npm"):
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(CACHE),
                        f"onnxruntime-web@{ORT_VERSION}"], capture_output=True, timeout=600)  # fmt: skip
    return dist if dist.exists() else None


def open_ready(browser, url: str, context=None):
    page = (context or browser).new_page()
    page.goto(url)
    page.wait_for_function("document.querySelector('#status')?.textContent.startsWith('ready')", timeout=60_000)
    return page


def python_speed(model: CharRNN, vocab: Vocab, chars: int) -> float:
    sampler = Sampler(model, vocab)
    sampler.generate(PRIME, 200, seed=0)  # warm
    start = time.perf_counter()
    sampler.generate(PRIME, chars, seed=1)
    return chars / (time.perf_counter() - start)


def browser_speed(page, kernel: str, chars: int) -> float:
    """chars/s of one seeded generation by the export's model, loaded once per page and kernel."""
    return page.evaluate(
        """async ([kernel, chars, prime]) => {
        const { load } = await import("./charrnn.js");
        window.models ??= {};
        if (!window.models[kernel]) {
            window.models[kernel] = await load("./", { kernel });
            await window.models[kernel].generate({ prime, length: 200, seed: 0 });
        }
        const start = performance.now();
        await window.models[kernel].generate({ prime, length: chars, seed: 1 });
        return chars / ((performance.now() - start) / 1000);
    }""",
        [kernel, chars, PRIME],
    )


def ort_engine(browser, site: Path, url: str, model: CharRNN, vocab: Vocab, name: str, chars: int):
    """A function timing onnxruntime-web on the model's ONNX export (the session made once)."""
    from charrnn.model.export import export_onnx, state_names

    export_onnx(model, vocab, site / f"{name}.onnx")
    (site / "charrnn").mkdir(exist_ok=True)
    for asset in ("picking.js", "random.js"):
        shutil.copy(site / name / asset, site / "charrnn" / asset)
    page = browser.new_page()
    page.goto(f"{url}/ort.html")
    page.wait_for_function("window.ready === true")
    config = model.config
    page.evaluate(
        "async (a) => window.openOrt(...a)", [f"{url}/{name}.onnx", state_names("lstm"), config.hidden, config.layers]
    )
    first = vocab.chars.index(" ")
    page.evaluate("async (a) => window.runOrt(...a)", [first, 200])  # warm
    return page, lambda: page.evaluate("async (a) => window.runOrt(...a)", [first, chars])


def speed_rows(browser, site: Path, url: str, chars: int, repeats: int, ort_dist: Path | None) -> list[list]:
    """Each engine timed `repeats` times, the engines interleaved, the medians."""
    vocab = Vocab.from_text(CORPORA["anna"].read_text(encoding="utf-8"))
    rows = []
    if ort_dist:
        shutil.copytree(ort_dist, site / "ort", dirs_exist_ok=True)
        (site / "ort.html").write_text(ORT_PAGE)
    for layers in (1, 2):
        torch.manual_seed(0)
        model = CharRNN(ModelConfig(hidden=512, layers=layers).for_vocab(len(vocab))).eval()
        name = f"{layers}x512"
        export_web(model, vocab, site / name)
        page = open_ready(browser, f"{url}/{name}/")
        engines = {
            "charrnn.js, WASM SIMD": partial(browser_speed, page, "simd", chars),
            "charrnn.js, plain JS": partial(browser_speed, page, "js", chars // 4),
            "charrnn sample (Python, batch 1)": partial(python_speed, model, vocab, chars),
        }
        ort_page = None
        if ort_dist:
            ort_page, engines["onnxruntime-web 1 thread"] = ort_engine(browser, site, url, model, vocab, name, chars)
        times = {engine: [] for engine in engines}
        for _ in range(repeats):
            for engine, measure in engines.items():
                times[engine].append(measure())
        page.close()
        if ort_page:
            ort_page.close()
        cli = statistics.median(times["charrnn sample (Python, batch 1)"])
        for engine, speeds in times.items():
            speed = statistics.median(speeds)
            rows.append([name, engine, f"{speed:,.0f}", f"{min(speeds):,.0f}–{max(speeds):,.0f}", f"{speed / cli:.0%}"])
    return rows


def first_char_ms(browser, url: str) -> tuple[float, float]:
    """(navigation to ready, click to the first character) in ms, in a fresh context (nothing cached)."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(url)
    page.wait_for_function("document.querySelector('#status').textContent.startsWith('ready')", polling=5)
    ready = page.evaluate("performance.now()")  # from the navigation's start
    page.fill("#length", "50")
    page.fill("#seed", "1")
    page.click("#generate")
    page.wait_for_function("document.querySelector('#status').textContent.startsWith('done')")
    first = float(page.text_content("#status").split("first after ")[1].split()[0])
    context.close()
    return ready, first


def browser_log_probs(browser, url: str, text: str) -> list[float]:
    page = open_ready(browser, url)
    values = page.evaluate("(t) => window.charrnnModel.logProbs(t)", text)
    page.close()
    return values


def python_log_probs(model: CharRNN, vocab: Vocab, text: str) -> torch.Tensor:
    ids = torch.as_tensor(vocab.encode(text).astype("int64"))[None]
    with torch.inference_mode():
        logits, _ = model(ids[:, :-1])
    return torch.log_softmax(logits.double(), -1)[0].gather(1, ids[0, 1:, None])[:, 0]


def run_rows(browser, site: Path, url: str, run: Path, args) -> dict:
    loaded = charrnn.load(run)
    valid = run_part(run, "valid")
    text = loaded.vocab.decode(valid[: args.score_chars + 1])
    out = {"first": [], "bytes": [], "loss": []}
    fp32_browser = None
    for mode in QUANTIZATIONS:
        folder, seen = export_web(loaded.model, loaded.vocab, site / f"run-{mode}", mode)
        sizes = {name: (folder / name).stat().st_size for name in (*ASSETS, WEIGHTS_FILE, "manifest.json")}
        page_bytes = sizes["index.html"] + sizes["page.css"] + sizes["page.js"]
        runtime = sum(sizes[n] for n in ASSETS if n.endswith(".js") and n != "page.js")
        out["bytes"].append([mode, f"{page_bytes:,}", f"{runtime:,}", f"{sizes[WEIGHTS_FILE]:,}",
                             f"{sizes['manifest.json']:,}", f"{sum(sizes.values()):,}"])  # fmt: skip
        full = evaluate(seen, valid).loss
        in_browser = -statistics.fmean(browser_log_probs(browser, f"{url}/run-{mode}/", text))
        in_python = -float(python_log_probs(seen, loaded.vocab, text).mean())
        fp32_browser = fp32_browser if fp32_browser is not None else in_browser
        out["loss"].append(
            [mode, f"{full:.4f}", f"{in_python:.4f}", f"{in_browser:.4f}", f"{in_browser - fp32_browser:+.4f}"]
        )
        if mode in ("fp32", "int8"):
            times = [first_char_ms(browser, f"{url}/run-{mode}/") for _ in range(3)]
            ready, first = statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)
            out["first"].append([mode, f"{ready:.0f}", f"{first:.0f}", f"{ready + first:.0f}"])
    out["agreement"] = agreement(browser, url, loaded, args)
    return out


def first_difference(a: str, b: str) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def agreement(browser, url: str, loaded, args) -> list:
    """Seeded samples in the browser (fp32, both kernels) against the Python sampler's."""
    sampler = Sampler(loaded.model, loaded.vocab)
    want = [sampler.generate(PRIME, args.sample_chars, seed=s) for s in range(args.seeds)]
    rows = []
    for kernel in ("simd", "js"):
        page = open_ready(browser, f"{url}/run-fp32/")
        got = page.evaluate(
            """async ([kernel, seeds, length, prime]) => {
            const { load } = await import("./charrnn.js");
            const model = await load("./", { kernel });
            const out = [];
            for (let seed = 0; seed < seeds; seed++) out.push(await model.generate({ prime, length, seed }));
            model.close();
            return out;
        }""",
            [kernel, args.seeds, args.sample_chars, PRIME],
        )
        page.close()
        differ = [first_difference(g, w) for g, w in zip(got, want, strict=True) if g != w]
        rows.append(
            [kernel, args.seeds, f"{args.seeds * args.sample_chars:,}", len(differ), ", ".join(map(str, differ)) or "-"]
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, help="a trained run (the default model) for load time, bytes and losses")
    parser.add_argument("--chars", type=int, default=3000, help="characters generated per speed figure")
    parser.add_argument("--repeats", type=int, default=5, help="timings of each engine, interleaved")
    parser.add_argument("--score-chars", type=int, default=20_000, help="validation characters scored in the browser")
    parser.add_argument("--seeds", type=int, default=50, help="seeded samples compared with Python's")
    parser.add_argument("--sample-chars", type=int, default=1000, help="characters per compared sample")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    ort_dist = fetch_ort()
    results = {}
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        site = Path(tmp)
        server, url = static_server(site)
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        try:
            results["version"] = browser.version
            results["speed"] = speed_rows(browser, site, url, args.chars, args.repeats, ort_dist)
            title = f"Chromium {browser.version}, median of {args.repeats} interleaved (plain JS on a quarter of the characters)"
            print_table(["model", "engine", "chars/s", "range", "of the CLI's"], results["speed"], title)
            if args.run:
                results |= run_rows(browser, site, url, args.run, args)
                print_table(["weights", "navigation to ready ms", "click to first char ms", "total ms"], results["first"],
                            "time to the first character (median of 3, fresh context)")  # fmt: skip
                print_table(
                    ["weights", "page", "runtime JS+WASM", "weights", "manifest", "total"],
                    results["bytes"],
                    "bytes downloaded",
                )
                print_table(["weights", "valid loss, Python (whole split)", f"Python, first {args.score_chars:,}",
                             "browser, same", "browser vs fp32"], results["loss"], "validation loss (nats/char)")  # fmt: skip
                print_table(["kernel", "seeds", "characters", "samples differing", "first differing character"],
                            results["agreement"], "seeded samples, browser vs Python (fp32)")  # fmt: skip
        finally:
            browser.close()
            server.terminate()
    save_results("web", {"args": {k: str(v) for k, v in vars(args).items()}, **results})
    print(json.dumps({"ok": True}))


if __name__ == "__main__":
    main()
