"""The page and modules an export copies (this package's .js/.html/.css files), in the order their
imports need: each module only imports ones before it, then the page."""

from __future__ import annotations

from importlib import resources

MODULES = ("kernel.js", "engine.js", "format.js", "picking.js", "random.js", "stops.js", "session.js",
           "worker.js", "charrnn.js", "controls.js", "page.js")  # fmt: skip
WORKER_MODULES = MODULES[: MODULES.index("worker.js") + 1]  # what the worker runs
ASSETS = (*MODULES, "page.css", "index.html")


def asset_text(name: str) -> str:
    return resources.files("charrnn.web").joinpath(name).read_text(encoding="utf-8")
