"""Callbacks: objects ``fit`` calls around training, epochs and batches.

Everything ``fit`` does beyond running steps is a callback, in this order:

=======================  ============================================  ======================
callback                 what it does                                  fit's shorthand
=======================  ============================================  ======================
:class:`ProgressLogger`  a bar per epoch, a line of metrics after it   ``verbose``, ``file``
:class:`NonFiniteGuard`  a NaN/Inf stops training; last good weights   (always on)
yours                    schedules, loggers, your own stop rules       ``callbacks=[...]``
:class:`EarlyStopping`   stop on a plateau, restore the best weights   ``patience``, ``monitor``
:class:`ModelCheckpoint` checkpoints and exact resume                  ``checkpoint``, ``resume``
=======================  ============================================  ======================

Learning-rate schedules (:mod:`fastnn.callbacks.schedules`, also importable as
``fastnn.schedules``): :class:`StepDecay`, :class:`ExponentialDecay`,
:class:`CosineDecay`, :class:`LambdaSchedule`, :class:`ReduceLROnPlateau`.
Loggers (:mod:`fastnn.callbacks.loggers`): :class:`CSVLogger` and
:class:`JSONLinesLogger` write a row per epoch (and per batch) as training goes.
Write your own by subclassing :class:`Callback`.
"""

from .base import Callback, CallbackList
from .early_stopping import EarlyStopping
from .loggers import CSVLogger, JSONLinesLogger
from .model_checkpoint import ModelCheckpoint
from .nonfinite import NonFiniteGuard
from .progress import ProgressLogger
from .schedules import CosineDecay, ExponentialDecay, LambdaSchedule, ReduceLROnPlateau, Schedule, StepDecay

__all__ = [
    "Callback",
    "CallbackList",
    "EarlyStopping",
    "CSVLogger",
    "JSONLinesLogger",
    "ModelCheckpoint",
    "NonFiniteGuard",
    "ProgressLogger",
    "Schedule",
    "StepDecay",
    "ExponentialDecay",
    "CosineDecay",
    "LambdaSchedule",
    "ReduceLROnPlateau",
]
