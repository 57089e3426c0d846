"""`charrnn serve`: checks its flags, then runs uvicorn on the app (the `serve` extra)."""

from __future__ import annotations

import gc
import signal
import socket
import sys
import threading
from pathlib import Path

from ..errors import CharRNNError
from ..serve.limits import ServeLimits
from ..settings import add_flags, flagged
from .common import add_model_flags

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
        # Accepted connections inherit it: without it a response's second write waits for the client's
        # delayed acknowledgement (40 ms a request here).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
    except (OSError, OverflowError) as exc:  # OverflowError: a port the socket module itself refuses
        raise CharRNNError(f"cannot listen on {host}:{port}: {getattr(exc, 'strerror', None) or exc}") from exc
    return sock


def add_serve(commands) -> None:
    p = commands.add_parser("serve", help="serve a trained model over HTTP: a web page and an API")
    add_model_flags(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (0: any free one, printed)")
    add_flags(p, ServeLimits)
    p.add_argument("--api-key-file", help="a file of API keys, one a line: every route but / and /health needs one")
    p.add_argument("--cors-origin", action="append", default=[], help="an origin allowed to call the API (repeat)")
    p.add_argument("--grace", type=float, default=30.0, help="seconds running requests get to finish on SIGTERM")
    p.set_defaults(run=serve)


def serve(args) -> int:
    try:
        import uvicorn

        from ..serve import create_app
        from ..serve.service import Service
    except ImportError as exc:
        raise CharRNNError(INSTALL_HINT) from exc
    if not 0 <= args.port <= 65535:
        raise CharRNNError(f"port (--port) must be in 0..65535, got {args.port}")
    for path in [args.path, *args.also]:
        if not Path(path).exists():
            raise CharRNNError(f"{path}: no such run directory or checkpoint")
    limits = ServeLimits(**{name: getattr(args, name) for name in vars(args) if name in flagged(ServeLimits)})
    service = Service([args.path, *args.also], args.checkpoint, args.device, limits)
    app = create_app(api_keys=_api_keys(args.api_key_file), cors_origins=args.cors_origin, service=service)
    sock = _listen(args.host, args.port)
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=args.grace, access_log=False)
    server = uvicorn.Server(config)
    # uvicorn on a thread of its own (where it installs no signal handlers): this one loads the model
    # and handles the signals.
    http = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="charrnn-http")

    def drain(signum, _frame) -> None:  # no new connections; running requests finish (up to --grace)
        server.should_exit = True

    previous = {s: signal.signal(s, drain) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        http.start()
        what = " with ".join([args.path, *args.also])
        print(f"serving {what} on http://{host}:{port}/ (Ctrl-C or SIGTERM to stop)", flush=True)
        if not service.load():  # /health answers 503 until this returns
            server.should_exit = True
            http.join()
            raise CharRNNError(service.error)
        gc.freeze()  # what loading made lives as long as the process: no full collection need walk it again
        while http.is_alive():  # until uvicorn has drained, however it ends; the app's shutdown stops the model
            http.join(0.5)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        service.stop()
    if service.loaded is not None and service.loaded.scheduler.error is not None:
        raise CharRNNError(service.loaded.scheduler.error)
    print("stopped", file=sys.stderr, flush=True)
    return 0
