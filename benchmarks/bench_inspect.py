"""`charrnn inspect`'s report: how long it takes to build, how large it is, and how long headless Chromium
takes to load it from disk and to recolour and hover it, for a trained run and a few text lengths.

    python benchmarks/bench_inspect.py RUN [--chars 5000,100000]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from bench_ngram import processor


def build(run: str, chars: int, out: Path) -> float:
    start = time.perf_counter()
    argv = [sys.executable, "-m", "charrnn", "inspect", run, "--chars", str(chars), "-o", str(out)]
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - start


def browse(page, path: Path) -> tuple[float, float, float]:
    """Seconds to the text on screen, to recolour by surprisal, to show a character's alternatives."""
    start = time.perf_counter()
    page.goto(path.as_uri())
    page.wait_for_function("document.querySelectorAll('#text span').length > 0")
    loaded = time.perf_counter() - start
    start = time.perf_counter()
    page.select_option("#view", "surprisal")
    page.evaluate("0")
    recoloured = time.perf_counter() - start
    start = time.perf_counter()
    page.locator("#text span").nth(200).hover()
    page.wait_for_selector("#tip .alt")
    return loaded, recoloured, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run")
    parser.add_argument("--chars", default="5000,100000")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("no chromium on PATH (apt-get install chromium)")
    print(f"processor: {processor()}; run: {args.run}")
    print("| characters | build s | MB | load s | recolour s | hover s |")
    print("| --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as work, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        page = browser.new_page()
        for chars in map(int, args.chars.split(",")):
            out = Path(work) / f"report-{chars}.html"
            seconds = build(args.run, chars, out)
            loaded, recoloured, hovered = browse(page, out)
            print(f"| {chars:,} | {seconds:.1f} | {out.stat().st_size / 1e6:.1f} | {loaded:.2f} | {recoloured:.2f} "
                  f"| {hovered:.2f} |", flush=True)  # fmt: skip
        browser.close()


if __name__ == "__main__":
    main()
