"""Files that are whole or absent: written to a temporary name, fsynced, renamed into place.

Readers see the old file or the whole new one, never a part; a process killed mid-write leaves a
`.tmp-*` file that `RunDir.clean_temporaries` removes. JSON is read with one-line errors.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import CharRNNError


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the whole new one, never a part."""
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_json(path: Path, obj) -> None:
    atomic_write(path, (json.dumps(obj, indent=1) + "\n").encode())


def read_json(path: Path, what: str) -> dict:
    """A JSON object from `path`; a one-line error naming `what` it should be when it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CharRNNError(f"{path}: no such file") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CharRNNError(f"{path}: not a readable {what} ({exc})") from exc
    if not isinstance(data, dict):
        raise CharRNNError(f"{path}: not a {what}")
    return data
