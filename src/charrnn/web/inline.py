"""`charrnn export RUN --web FILE.html --single-file`: the whole export in one HTML file that opens from
disk (file://) as well as from a host. The style is inlined, the manifest and the base64 weights sit in
inert script elements, and each module sits as text; a small boot script turns the modules into blob
URLs, leaves first, pointing each module's "./name.js" at the blob made for it, then starts the page.
A page opened from disk may not start a module worker, nor import modules into one, so the worker and
the modules under it are also linked here into one classic script (`worker_script`).
"""

from __future__ import annotations

import base64
import json
import os
import re
import tempfile
from pathlib import Path

from ..errors import CharRNNError
from .assets import MODULES, WORKER_MODULES, asset_text

BOOT = """
const urls = {};
for (const element of document.querySelectorAll("script[data-module]")) {
  let code = element.textContent;
  for (const [name, url] of Object.entries(urls)) code = code.replaceAll(`"./${name}"`, JSON.stringify(url));
  urls[element.dataset.module] = URL.createObjectURL(new Blob([code], { type: "text/javascript" }));
}
import(urls["page.js"]);
"""


IMPORT = re.compile(r'^import \{([^}]*)\} from "\./([\w.]+)";$', re.MULTILINE)
EXPORT = re.compile(r"^export (?:async )?(?:class|function|const|let) (\w+)", re.MULTILINE)


def _linked(name: str, source: str) -> str:
    """One module as a function's body: its imports read from the modules before it, its exports returned."""
    exported = EXPORT.findall(source)
    body = IMPORT.sub(lambda m: f"const {{{m[1]}}} = modules[{m[2]!r}];", source)
    body = re.sub(r"^export ", "", body, flags=re.MULTILINE)
    return f"modules[{name!r}] = (() => {{\n{body}\nreturn {{ {', '.join(exported)} }};\n}})();"


def worker_script() -> str:
    """worker.js and the modules under it as one classic script (no import, no export)."""
    return '"use strict";\nconst modules = {};\n' + "\n".join(_linked(n, asset_text(n)) for n in WORKER_MODULES)


def _inert(kind: str, attributes: str, text: str) -> str:
    """A script element the browser does not run; its text must not close it early."""
    if re.search(r"</script", text, re.IGNORECASE):
        raise CharRNNError(f"cannot inline {attributes}: its text holds '</script'")
    return f'<script type="{kind}" {attributes}>{text}</script>'


def single_file_html(meta: dict, blob: bytes) -> str:
    page = asset_text("index.html")
    style = f"<style>\n{asset_text('page.css')}</style>"
    manifest_json = json.dumps(meta).replace("</", "<\\/")  # a JSON escape, so the text stays JSON
    parts = [
        _inert("application/json", 'id="charrnn-manifest"', manifest_json),
        _inert("text/plain", 'id="charrnn-weights"', base64.b64encode(blob).decode("ascii")),
        *(_inert("text/plain", f'data-module="{name}"', asset_text(name)) for name in MODULES),
        _inert("text/plain", 'id="charrnn-worker"', worker_script()),
        f'<script type="module">{BOOT}</script>',
    ]
    page = page.replace('<link rel="stylesheet" href="page.css">', style)
    return page.replace('<script type="module" src="page.js"></script>', "\n".join(parts))


def write_single_file(out: Path, meta: dict, blob: bytes) -> Path:
    """Writes the page atomically: a failed export leaves an earlier file whole."""
    if out.suffix != ".html":
        raise CharRNNError(f"a single-file export is one HTML file: give a name ending in .html, not {out}")
    if out.is_dir():
        raise CharRNNError(f"{out} is a folder: give the single-file export a file name ending in .html")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(single_file_html(meta, blob))
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return out
