"""`charrnn serve`: checks its flags, then runs uvicorn on the app (the `serve` extra)."""

from __future__ import annotations

import signal
import socket
import sys
from pathlib import Path

from .errors import CharRNNError

INSTALL_HINT = "charrnn serve needs the serve extra: pip install -e '.[serve]'"


def _api_keys(path: str | None) -> list[str]:
    if path is None:
        return []
    try:
        keys = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise CharRNNError(f"{path}: cannot read the API key file ({exc})") from exc
    if not keys:
        raise CharRNNError(f"{path}: the API key file holds no key")
    return keys


def _listen(host: str, port: int) -> socket.socket:
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        raise CharRNNError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    return sock


def serve(args) -> int:
    try:
        import uvicorn

        from .serve import ServeLimits, create_app
    except ImportError as exc:
        raise CharRNNError(INSTALL_HINT) from exc
    for path in [args.path, *args.also]:
        if not Path(path).exists():
            raise CharRNNError(f"{path}: no such run directory or checkpoint")
    limits = ServeLimits(max_batch=args.max_batch, max_queue=args.max_queue, max_length=args.max_length)
    app = create_app(
        [args.path, *args.also], args.checkpoint, args.device, limits, _api_keys(args.api_key_file), args.cors_origin
    )
    sock = _listen(args.host, args.port)
    host, port = sock.getsockname()[:2]
    print(f"serving {args.path} on http://{host}:{port}/ (Ctrl-C or SIGTERM to stop)", flush=True)
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=args.grace, access_log=False)
    # uvicorn drains on SIGINT/SIGTERM, then raises the signal again under the handlers it found: make
    # those no-ops, so that a drained server exits 0 instead of dying by the signal it has handled.
    previous = {s: signal.signal(s, lambda *_: None) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    print("stopped", file=sys.stderr, flush=True)
    return 0
