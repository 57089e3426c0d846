"""The one exception type for mistakes a user can make (bad files, flags, checkpoints).

The CLI turns it into a one-line message and a non-zero exit; anything else that escapes is a
bug and keeps its traceback.
"""


class CharRNNError(Exception):
    """A problem the user can fix; the message says what went wrong and, where it can, what to do."""

    exit_code = 1
