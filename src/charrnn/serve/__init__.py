"""`charrnn serve`: an HTTP API and a web page over one continuously batched model (the `serve` extra)."""

from __future__ import annotations

from .app import ServeLimits, create_app

__all__ = ["ServeLimits", "create_app"]
