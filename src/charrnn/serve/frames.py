"""The HTTP process's end of the pipe to the model process, on the event loop: whole messages read and
written without blocking, in the framing of `multiprocessing.Connection` (a 4-byte big-endian length,
or -1 and an 8-byte one, then the pickle), which the model process reads and writes with a plain
blocking `Connection`.

`Connection.recv` and `send` cannot be used here: uvloop's `add_reader` makes the descriptor
non-blocking, and then a message larger than what has arrived (a long text with its logprobs) fails
half read, and a send into a full buffer fails half written.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import struct
from collections.abc import Callable
from multiprocessing.reduction import ForkingPickler

_CHUNK = 1 << 16


def frame(message) -> bytes:
    """`message` as `Connection.send` puts it on the wire."""
    payload = ForkingPickler.dumps(message)
    size = len(payload)
    return (struct.pack("!i", size) if size <= 0x7FFFFFFF else struct.pack("!iQ", -1, size)) + payload


class Frames:
    """Messages over the descriptor `fd`, watched by `loop` until `close`: `on_readable` is called when
    there may be messages to `read`; `write` queues what the pipe cannot take yet and sends it when it
    can (`on_error` hears of a failure there)."""

    def __init__(
        self,
        fd: int,
        loop: asyncio.AbstractEventLoop,
        on_readable: Callable[[], None],
        on_error: Callable[[OSError], None],
    ):
        self.fd, self.loop, self.on_error = fd, loop, on_error
        self._in = bytearray()
        self._out = bytearray()
        self._waiting_to_write = False
        loop.add_reader(fd, on_readable)
        os.set_blocking(fd, False)  # as uvloop's add_reader leaves it; asyncio's would not

    def read(self) -> list:
        """Every whole message that has arrived so far; EOFError once the other end has closed and
        every message it sent has been returned."""
        closed = False
        while not closed:
            try:
                chunk = os.read(self.fd, _CHUNK)
            except BlockingIOError:
                break
            closed = not chunk
            self._in += chunk
        messages = []
        while (frame := self._frame()) is not None:
            start, end = frame
            messages.append(pickle.loads(self._in[start:end]))
            del self._in[:end]
        if closed and not messages:
            raise EOFError
        return messages

    def _frame(self) -> tuple[int, int] | None:
        """Where the first whole message's pickle lies in what has arrived, or None."""
        if len(self._in) < 4:
            return None
        (size,) = struct.unpack_from("!i", self._in)
        start = 4
        if size == -1:
            if len(self._in) < 12:
                return None
            (size,) = struct.unpack_from("!Q", self._in, 4)
            start = 12
        return (start, start + size) if len(self._in) >= start + size else None

    def write(self, message) -> None:
        self._out += frame(message)
        if not self._waiting_to_write:
            self._flush()  # OSError (the other end is gone) goes to the caller

    def _flush(self) -> None:
        try:
            while self._out:
                del self._out[: os.write(self.fd, self._out)]
        except BlockingIOError:
            pass
        if self._out and not self._waiting_to_write:
            self.loop.add_writer(self.fd, self._flush_when_writable)
            self._waiting_to_write = True
        elif not self._out and self._waiting_to_write:
            self.loop.remove_writer(self.fd)
            self._waiting_to_write = False

    def _flush_when_writable(self) -> None:
        try:
            self._flush()
        except OSError as exc:
            self.close()
            self.on_error(exc)

    def unsent(self) -> bytes:
        """What is still queued (for a blocking write once the loop is done)."""
        return bytes(self._out)

    def close(self) -> None:
        """Stop watching the descriptor (it stays open: its `Connection` owns it)."""
        self.loop.remove_reader(self.fd)
        if self._waiting_to_write:
            self.loop.remove_writer(self.fd)
            self._waiting_to_write = False
