"""Learning-rate schedules: ``fastnn.schedules`` is :mod:`fastnn.callbacks.schedules`.

The schedules are callbacks and live in :mod:`fastnn.callbacks`; this module keeps the
name ``fnn.schedules`` they have always had.
"""

from .callbacks.schedules import (
    CosineDecay,
    ExponentialDecay,
    LambdaSchedule,
    ReduceLROnPlateau,
    Schedule,
    StepDecay,
)

__all__ = ["Schedule", "StepDecay", "ExponentialDecay", "CosineDecay", "LambdaSchedule", "ReduceLROnPlateau"]
