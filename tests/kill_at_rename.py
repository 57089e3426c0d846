"""`python tests/kill_at_rename.py N ARGS...`: the charrnn command line, SIGKILLed just before the Nth
rename of an atomic write (a file fully written and synced, not yet in place): a crash mid-save."""

import os
import signal
import sys

from charrnn.cli.main import main
from charrnn.runs import files


class _KillingOs:
    """`os` for charrnn.runs.files, with a `replace` that counts and kills."""

    def __init__(self, kill_at: int):
        self.kill_at, self.renames = kill_at, 0

    def __getattr__(self, name):
        return getattr(os, name)

    def replace(self, src, dst):
        self.renames += 1
        if self.renames == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        os.replace(src, dst)


if __name__ == "__main__":
    files.os = _KillingOs(int(sys.argv[1]))
    sys.exit(main(sys.argv[2:]))
