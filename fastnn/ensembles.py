"""Ensembles of trained classifiers: ``fnn.ensemble(models, method="average" | "vote")``.

Nielsen's "Neural Networks and Deep Learning", chapter 6, trains five convolutional
networks and lets them vote: each network errs on different images, so the majority is
wrong less often than a typical member. Two ways to combine the K members:

- ``"average"`` (soft voting): the mean of the members' class probabilities,
  p(x) = (1/K) sum_k p_k(x), and the class with the largest mean probability. For
  members without probabilities (a MeanSquaredError model), the mean of their outputs.
- ``"vote"`` (hard voting, Nielsen's): each member names its class; the class with the
  most votes wins, a tie going to the smallest class index. Its "probabilities" are the
  fractions of the votes, v(x)[c] = (1/K) #{k : class_k(x) = c}.

The members are any objects with ``predict`` (and, for their methods,
``predict_proba``, ``predict_classes`` and ``loss_fn``), such as trained
:class:`~fastnn.model.Sequential` models; they are not copied.
"""

from __future__ import annotations

import numpy as np

from .losses import SoftmaxCrossEntropy

METHODS = ("average", "vote")


class Ensemble:
    """K trained models combined by ``method``; see :mod:`fastnn.ensembles` for the formulas."""

    def __init__(self, models, method: str = "average"):
        if method not in METHODS:
            raise ValueError(f"ensemble: method must be one of {METHODS}, got {method!r}")
        try:
            members = list(models)
        except TypeError:
            raise TypeError(f"ensemble: expected a list of models, got {type(models).__name__}") from None
        if not members:
            raise ValueError("ensemble: expected at least one model, got an empty list")
        for index, member in enumerate(members):
            if not callable(getattr(member, "predict", None)):
                raise TypeError(
                    f"ensemble: models[{index}] has no predict method (got {type(member).__name__}); "
                    "expected trained models such as fnn.Sequential"
                )
        self.models = members
        self.method = method

    def __len__(self):
        return len(self.models)

    def __repr__(self):
        return f"Ensemble({len(self.models)} models, method={self.method!r})"

    def _stack(self, name: str, x) -> np.ndarray:
        """(K, N, ...) outputs of every member's ``name`` method, checked to share one shape."""
        outputs = [np.asarray(getattr(member, name)(x)) for member in self.models]
        for index, out in enumerate(outputs[1:], start=1):
            if out.shape != outputs[0].shape:
                raise ValueError(
                    f"ensemble.{name}: models[{index}] gives outputs of shape {out.shape}, "
                    f"models[0] gives {outputs[0].shape}; the members must have the same outputs"
                )
        return np.stack(outputs)

    def _votes(self, x) -> np.ndarray:
        """(N, C) fractions of the members voting for each class; C from the members' outputs."""
        classes = self._stack("predict_classes", x)
        if classes.ndim != 2:
            raise ValueError(
                "ensemble: method 'vote' needs one class per sample from each model's "
                f"predict_classes, got shape {classes.shape[1:]}"
            )
        outputs = np.asarray(self.models[0].predict(x[:1]))
        return vote_fractions(classes, outputs.shape[1] if outputs.ndim == 2 and outputs.shape[1] > 1 else 2)

    def _has_probabilities(self) -> bool:
        try:
            self.models[0].loss_fn.probabilities(np.zeros((1, 2), np.float32))
        except (AttributeError, TypeError):
            return False
        return True

    def predict(self, x) -> np.ndarray:
        """average: the mean of the members' outputs ``predict(x)`` (N, ...); vote: the
        fractions of the votes (N, C)."""
        if self.method == "vote":
            return self._votes(x)
        return self._stack("predict", x).mean(axis=0)

    def predict_proba(self, x) -> np.ndarray:
        """average: the mean of the members' ``predict_proba(x)`` (N, C); vote: the
        fractions of the votes (N, C). Rows sum to 1 for softmax members and for votes."""
        if self.method == "vote":
            return self._votes(x)
        return self._stack("predict_proba", x).mean(axis=0)

    def predict_classes(self, x) -> np.ndarray:
        """Class indices (N,) int64: the largest mean probability (average; the members'
        ``loss_fn.classes`` of the mean output for members without probabilities) or the
        most votes (vote; ties to the smallest index)."""
        if self.method == "vote":
            return self._votes(x).argmax(axis=1).astype(np.int64)
        if self._has_probabilities():
            proba = self.predict_proba(x)
            if proba.ndim == 2 and proba.shape[1] > 1:
                return proba.argmax(axis=1).astype(np.int64)
            return (proba.reshape(len(proba), -1)[:, 0] > 0.5).astype(np.int64)
        return self.models[0].loss_fn.classes(self.predict(x))

    def evaluate(self, x, t) -> dict:
        """{"accuracy": fraction of predict_classes(x) equal to t} (t class indices (N,) or
        one-hot (N, C)), and with method "average" "loss": for SoftmaxCrossEntropy members
        the cross-entropy of the mean probabilities, -(1/N) sum_n log p(x_n)[t_n]; for
        other members their loss of the mean output, ``loss_fn.forward(predict(x), t)``."""
        t = np.asarray(t)
        if len(t) != len(x) or len(x) == 0:
            raise ValueError(
                f"ensemble.evaluate: x has {len(x)} samples and t has {len(t)}; "
                "expected the same, non-zero count"
            )
        labels = (t.argmax(axis=1) if t.ndim == 2 and t.shape[1] > 1 else t.reshape(len(t))).astype(np.int64)
        loss_fn = getattr(self.models[0], "loss_fn", None)
        if self.method == "average" and isinstance(loss_fn, SoftmaxCrossEntropy):
            proba = self.predict_proba(x)  # once: both figures come from it
            picked = proba[np.arange(len(labels)), labels]
            loss = float(-np.mean(np.log(np.maximum(picked, np.finfo(proba.dtype).tiny))))
            return {"loss": loss, "accuracy": float(np.mean(proba.argmax(axis=1) == labels))}
        result = {}
        if self.method == "average" and loss_fn is not None:
            result["loss"] = float(loss_fn.forward(self.predict(x), t))
        result["accuracy"] = float(np.mean(self.predict_classes(x) == labels))
        return result


def vote_fractions(classes, num_classes: int = 2) -> np.ndarray:
    """(N, C) fractions of K voters naming each class: v[n, c] = (1/K) #{k : classes[k, n] = c}.

    ``classes``: (K, N) integer class indices, one row per voter. C is the larger of
    ``num_classes`` and the largest class named plus one. ``argmax(axis=1)`` of the result
    is the majority vote, a tie going to the smallest class index."""
    classes = np.asarray(classes)
    if classes.ndim != 2 or classes.dtype.kind not in "iu":
        raise ValueError(
            f"vote_fractions: classes must be (K voters, N samples) integers, got shape "
            f"{classes.shape} and dtype {classes.dtype}"
        )
    counts = np.zeros((classes.shape[1], max(num_classes, int(classes.max(initial=0)) + 1)))
    for member_classes in classes:
        counts[np.arange(classes.shape[1]), member_classes] += 1.0
    return counts / len(classes)


def ensemble(models, method: str = "average") -> Ensemble:
    """An :class:`Ensemble` of the trained ``models`` (a non-empty list) combined by
    ``method``: "average" (the mean probability) or "vote" (the majority of the classes)."""
    return Ensemble(models, method)


__all__ = ["Ensemble", "METHODS", "ensemble", "vote_fractions"]
