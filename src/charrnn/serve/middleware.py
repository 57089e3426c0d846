"""Counting requests and capping bodies, as plain ASGI: a streamed response's chunks pass straight
through (Starlette's `BaseHTTPMiddleware` relays each one through a queue of its own)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from fastapi import HTTPException

Scope = dict
Message = dict
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class CountAndCap:
    """Refuses a body over `max_body` bytes with 413 (declared or streamed) and calls `count(route, status)`
    once for every HTTP request, whatever it ends in."""

    def __init__(self, app: ASGIApp, max_body: int, count: Callable[[str, int], None]):
        self.app, self.max_body, self.count = app, max_body, count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what the client gets when the app fails before it answers
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_body:
            await self._too_large(send)
            self.count("other", 413)
            return
        received = 0

        async def capped_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body:  # a chunked body that declared no length
                raise HTTPException(413, self._detail())
            return message

        async def status_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, capped_receive, status_send)
        finally:
            self.count(getattr(scope.get("route"), "path", "other"), status)

    def _detail(self) -> str:
        return f"body over {self.max_body} bytes"

    async def _too_large(self, send: Send) -> None:
        body = json.dumps({"detail": self._detail()}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
