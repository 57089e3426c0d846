"""The HTTP process's end of the model process's pipe (`serve/frames.py`) against a plain blocking
`multiprocessing.Connection` at the other end, as the model process holds it: messages far larger
than the pipe's buffers arrive whole and in order, both ways, on asyncio's loop and on uvloop's."""

import asyncio
import multiprocessing
import threading

import pytest

from charrnn.serve.frames import Frames

BIG = {"text": "x" * 3_000_000, "numbers": list(range(100_000))}  # several times a socket's buffers
MESSAGES = [("small", 1), BIG, ("small", 2), ("events", [("text", 0, "abc", [])] * 1000)]


def loops():
    yield asyncio.new_event_loop
    uvloop = pytest.importorskip("uvloop")
    yield uvloop.new_event_loop


@pytest.mark.parametrize("new_loop", list(loops()), ids=["asyncio", "uvloop"])
def test_large_messages_arrive_whole_both_ways(new_loop):
    ours, theirs = multiprocessing.Pipe()
    loop = new_loop()
    received, echoed = [], []

    def other_end():  # reads what we wrote (slowly at first, so our side's buffer fills), then writes
        threading.Event().wait(0.2)
        echoed.extend(theirs.recv() for _ in MESSAGES)
        for message in MESSAGES:
            theirs.send(message)

    async def main():
        done = asyncio.Event()

        def readable():
            received.extend(frames.read())
            if len(received) == len(MESSAGES):
                done.set()

        frames = Frames(ours.fileno(), asyncio.get_running_loop(), readable, on_error=pytest.fail)
        for message in MESSAGES:
            frames.write(message)  # never blocks, though the pipe cannot take it all
        await asyncio.wait_for(done.wait(), timeout=30)
        frames.close()

    thread = threading.Thread(target=other_end)
    thread.start()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
        thread.join(30)
    assert echoed == MESSAGES and received == MESSAGES


def test_the_other_ends_last_message_comes_before_its_eof():
    ours, theirs = multiprocessing.Pipe()
    loop = asyncio.new_event_loop()
    frames = Frames(ours.fileno(), loop, lambda: None, on_error=pytest.fail)
    theirs.send(("failed", "why"))  # as a model process that fails says why, then ends
    theirs.close()
    assert frames.read() == [("failed", "why")]
    with pytest.raises(EOFError):
        frames.read()
    frames.close()
    loop.close()
