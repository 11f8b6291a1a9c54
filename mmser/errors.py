"""Errors that the CLI reports as one clear line (exit code 2)."""


class MmserError(ValueError):
    """A user-facing failure: bad input, missing model, refused checkpoint."""
