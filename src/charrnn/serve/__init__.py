"""`charrnn serve`: an HTTP API and a web page over one continuously batched model (the `serve` extra)."""

from __future__ import annotations

from .limits import ServeLimits

__all__ = ["ServeLimits", "create_app"]


def __getattr__(name: str):
    if name == "create_app":  # FastAPI is imported only when the app is asked for (the serve extra)
        from .app import create_app

        return create_app
    raise AttributeError(name)
