"""The one exception type for mistakes a user can make (bad files, flags, checkpoints).

The CLI turns it into a one-line message and a non-zero exit; anything else that escapes is a
bug and keeps its traceback.
"""


class CharRNNError(Exception):
    """A problem the user can fix; the message says what went wrong and, where it can, what to do."""

    exit_code = 1


def flag_name(name: str) -> str:
    """A setting's flag: the field's name with `-` for `_`, the one rule between the two."""
    return "--" + name.replace("_", "-")


def setting(name: str) -> str:
    """A setting as both its readers know it: `hidden (--hidden)`, for API callers and CLI users alike."""
    return f"{name} ({flag_name(name)})"
