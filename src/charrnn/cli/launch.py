"""The `charrnn` command's entry: `prepare` runs without loading torch; every other command goes
to `cli`."""

from __future__ import annotations

import sys


def entry_point() -> None:
    argv = sys.argv[1:]
    if argv[:1] == ["prepare"]:
        from .prepare import main

        sys.exit(main(argv[1:]))
    from .main import entry_point as cli_entry_point

    cli_entry_point()
