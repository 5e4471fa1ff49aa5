"""Exceptions fastnn raises beyond the built-in ValueError/TypeError."""


class NonFiniteError(FloatingPointError):
    """A loss or gradient became NaN or Inf; the message names where it first appeared."""
