"""The one place that turns what a command raised into one line on stderr and an exit code."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from ..errors import CharRNNError


def reported(command: Callable[[], int], debug: bool = False, interrupted: str = "interrupted") -> int:
    """`command()`'s exit code; a user's mistake or the environment's refusal is one `charrnn: error:` line
    (`debug` lets it raise with its traceback instead), Ctrl-C is 130, a closed pipe is quiet."""
    try:
        return command()
    except CharRNNError as exc:
        if debug:
            raise
        print(f"charrnn: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"charrnn: {interrupted}", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): not an error. Point stdout at /dev/null so that
        # the interpreter's final flush does not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # the environment, not a bug: a full disk, a read-only directory, ...
        if debug:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"charrnn: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
