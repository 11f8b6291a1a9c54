"""The one family of user-facing errors: the CLI prints these as one line (exit code 2), never a traceback.

Every error that bad input can cause derives from :class:`MmserError` and names the file or config key
at fault. Anything else that escapes is a bug and keeps its traceback.
"""


class MmserError(ValueError):
    """A user-facing failure: bad input, missing model, refused checkpoint."""
