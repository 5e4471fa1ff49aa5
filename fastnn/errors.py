"""Exceptions fastnn raises beyond the built-in ValueError/TypeError."""


class NonFiniteError(FloatingPointError):
    """A loss or gradient became NaN or Inf; the message names where it first appeared."""


class ModelFileError(ValueError):
    """A file is not a fastnn model, is corrupt or truncated, or is from a newer version."""
