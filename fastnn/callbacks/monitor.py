"""The check a callback that watches a metric (``monitor=``) runs before the first step."""

from __future__ import annotations

import difflib

__all__ = ["check_monitor", "check_monitor_type"]


def check_monitor_type(owner: str, monitor) -> None:
    """Refuse a ``monitor`` that is not a string, at construction."""
    if not isinstance(monitor, str):
        raise TypeError(
            f"{owner}: monitor must be the name of a metric, a string such as 'val_loss', "
            f"got {type(monitor).__name__} {monitor!r}"
        )


def check_monitor(owner: str, monitor: str, loop) -> None:
    """Raise a ValueError naming ``owner`` unless ``loop`` records the metric ``monitor``.

    ``loop.metric_names`` lists the metrics fit can record; a ``val_`` metric also needs
    validation data (``loop.validation``). The error lists the valid names and suggests
    the closest one (difflib).
    """
    names = list(loop.metric_names)
    if monitor not in names:
        close = difflib.get_close_matches(monitor, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"{owner}: monitor={monitor!r} is not a metric fit records; expected one of "
            f"{', '.join(repr(name) for name in names)}{hint}"
        )
    if monitor.startswith("val_") and loop.validation is None:
        raise ValueError(
            f"{owner}: monitor={monitor!r} needs validation data, and fit has none; pass "
            f"validation_data=(x_val, t_val) or validation_split=0.1 to fit, or monitor {monitor[4:]!r}"
        )
