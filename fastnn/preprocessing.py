"""Preprocessing fitted on the training set: min-max scaling, standardisation, PCA, ZCA.

Each transform is a :class:`~fastnn.layers.Layer` without trainable parameters. Fit it
on the training set, then either apply it to any other set with ``transform`` or put
it first in a model, which then saves it with its weights (its statistics are
:attr:`~fastnn.layers.Layer.buffers`):

    scale = fnn.preprocessing.Standardize().fit(x_train)
    model = fnn.Sequential([scale, fnn.Flatten(), fnn.Dense(784, 10)])
    model.fit(x_train, t_train)                 # raw pixels in, standardised inside
    model.evaluate(x_test, t_test)              # the training set's statistics, not the test set's
    model.save("model.npz")                     # fnn.load restores the fitted statistics

Statistics are computed and stored in float64; the transform runs in the model's
dtype (or, through ``transform``, in the input's float dtype). Every transform is
linear, so ``backward`` returns the exact input gradient. Using a transform that has
not been fitted raises :class:`NotFittedError`.
"""

from __future__ import annotations

import numbers

import numpy as np

from .layers.base import Layer

__all__ = ["NotFittedError", "MinMaxScale", "Standardize", "PCA", "ZCA"]

PER = ("feature", "channel", "global")

#: Rows per chunk when accumulating a covariance matrix in float64.
_CHUNK = 4096


class NotFittedError(RuntimeError):
    """A preprocessing transform was used before ``fit``."""


def _as_float(x, where: str) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if x.dtype.kind not in "fiub":
        raise TypeError(f"{where}: expected a numeric array, got dtype {x.dtype}")
    if x.ndim < 2 or x.shape[0] < 1:
        raise ValueError(f"{where}: expected samples of shape (N, ...) with N >= 1, got {x.shape}")
    return x


def _check_shape_arg(where: str, shape):
    if shape is None:
        return None
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise ValueError(f"{where}: shape must be a sequence of positive integers, got {shape!r}") from None
    if not shape or any(s < 1 for s in shape):
        raise ValueError(f"{where}: shape must be a sequence of positive integers, got {shape!r}")
    return shape


def _check_eps(where: str, eps) -> float:
    if not isinstance(eps, numbers.Real) or isinstance(eps, bool) or not np.isfinite(eps) or eps < 0:
        raise ValueError(f"{where}: eps must be a finite number >= 0, got {eps!r}")
    return float(eps)


class _Preprocessing(Layer):
    """Shared machinery: a sample ``shape`` fixed by ``fit``, float64 statistics in buffers."""

    def __init__(self, shape=None):
        super().__init__()
        self.shape = _check_shape_arg(type(self).__name__, shape)
        if self.shape is not None:
            # Room for statistics that fnn.load copies in; NaN until then (= not fitted).
            self.buffers = {name: np.full(s, np.nan) for name, s in self._buffer_shapes(self.shape).items()}
        self._x_shape = None

    # -- to implement ----------------------------------------------------------------

    def _buffer_shapes(self, shape: tuple) -> dict:
        raise NotImplementedError

    def _statistics(self, x: np.ndarray) -> dict:
        """float64 statistics of the training set x (N, *shape)."""
        raise NotImplementedError

    def _apply(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _apply_backward(self, dy: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # -- public API ------------------------------------------------------------------

    def get_config(self):
        return {"shape": None if self.shape is None else list(self.shape)}

    @property
    def fitted(self) -> bool:
        return bool(self.buffers) and all(np.isfinite(b).all() for b in self.buffers.values())

    def fit(self, x) -> "_Preprocessing":
        """Compute the statistics of the training set ``x`` (N, ...); returns self."""
        where = f"{type(self).__name__}.fit"
        x = _as_float(x, where)
        if not np.isfinite(x).all():
            raise ValueError(f"{where}: x contains NaN or Inf")
        self.shape = tuple(int(s) for s in x.shape[1:])
        statistics = self._statistics(x)
        self.buffers = {
            name: np.ascontiguousarray(value, dtype=np.float64) for name, value in statistics.items()
        }
        return self

    def transform(self, x) -> np.ndarray:
        """The transform of ``x`` (N, ...), computed in x's float dtype (float32 for integers)."""
        x = _as_float(x, f"{type(self).__name__}.transform")
        if x.dtype.kind != "f" or x.dtype.itemsize not in (4, 8):
            x = x.astype(np.float32)
        self._require_fitted(x)
        return self._apply(x)

    def fit_transform(self, x) -> np.ndarray:
        """``fit(x)`` then ``transform(x)``."""
        return self.fit(x).transform(x)

    def _require_fitted(self, x=None) -> None:
        name = type(self).__name__
        if not self.fitted:
            raise NotFittedError(
                f"{name}: not fitted; call {name}(...).fit(x_train) on the training set before using it"
            )
        if x is not None and tuple(x.shape[1:]) != self.shape:
            raise ValueError(
                f"{self.describe()}: fitted on samples of shape {self.shape}, got input of shape {x.shape}"
            )

    def _stat(self, name: str, dtype) -> np.ndarray:
        return self.buffers[name].astype(dtype)

    # -- layer protocol ----------------------------------------------------------------

    def output_shape(self, input_shape):
        if self.shape is not None and tuple(input_shape) != self.shape:
            raise ValueError(
                f"{self.describe()}: fitted on samples of shape {self.shape}, got {tuple(input_shape)}"
            )
        return tuple(input_shape)

    def forward(self, x, train=True):
        self.check_input(x)
        self._require_fitted(x)
        self._x_shape = x.shape
        return self._apply(x)

    def backward(self, dy):
        shape = self._require_forward("_x_shape")
        return self._apply_backward(dy).reshape(shape)


def _reduce_axes(per: str, ndim: int) -> tuple:
    """Axes of x (N, *shape) that one statistic covers."""
    if per == "feature":
        return (0,)
    if per == "channel":
        return (0,) + tuple(range(2, ndim))
    return tuple(range(ndim))


def _stat_shape(per: str, shape: tuple) -> tuple:
    if per == "feature":
        return shape
    if per == "channel":
        return (shape[0],) + (1,) * (len(shape) - 1)
    return (1,) * len(shape)


def _check_per(where: str, per) -> str:
    if per not in PER:
        raise ValueError(f"{where}: per must be one of {PER}, got {per!r}")
    return per


class _Elementwise(_Preprocessing):
    """y = x * scale + shift, with (broadcast) statistics per feature, channel or overall."""

    def __init__(self, per="feature", shape=None):
        self.per = _check_per(type(self).__name__, per)
        super().__init__(shape)

    def get_config(self):
        return {"per": self.per, **super().get_config()}

    def _coefficients(self, dtype) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _apply(self, x):
        scale, shift = self._coefficients(x.dtype)
        return x * scale + shift

    def _apply_backward(self, dy):
        scale, _ = self._coefficients(dy.dtype)
        return dy * scale


class MinMaxScale(_Elementwise):
    """Min-max normalisation: y = (x - min) / (max - min) * (high - low) + low.

    ``min``/``max`` come from the training set, per feature (each input value position,
    the default), per channel or over everything (``per``). A constant feature
    (max == min) is shifted to ``low``. Values outside the training range map outside
    [low, high], as in scikit-learn.
    """

    def __init__(self, feature_range=(0.0, 1.0), per="feature", shape=None):
        try:
            low, high = (float(v) for v in feature_range)
        except (TypeError, ValueError):
            raise ValueError(
                f"MinMaxScale: feature_range must be a pair (low, high), got {feature_range!r}"
            ) from None
        if not low < high:
            raise ValueError(f"MinMaxScale: feature_range needs low < high, got {feature_range!r}")
        self.feature_range = (low, high)
        super().__init__(per, shape)

    def get_config(self):
        return {"feature_range": list(self.feature_range), **super().get_config()}

    def _buffer_shapes(self, shape):
        s = _stat_shape(self.per, shape)
        return {"min": s, "max": s}

    def _statistics(self, x):
        axes = _reduce_axes(self.per, x.ndim)
        return {
            "min": x.min(axis=axes).astype(np.float64).reshape(_stat_shape(self.per, self.shape)),
            "max": x.max(axis=axes).astype(np.float64).reshape(_stat_shape(self.per, self.shape)),
        }

    def _coefficients(self, dtype):
        low, high = self.feature_range
        lo, hi = self.buffers["min"], self.buffers["max"]
        span = np.where(hi > lo, hi - lo, 1.0)
        scale = (high - low) / span
        return scale.astype(dtype), (low - lo * scale).astype(dtype)


class Standardize(_Elementwise):
    """Standardisation: y = (x - mean) / std, with the training set's mean and std.

    Per feature (the default), per channel or over everything (``per``); a feature
    whose std is below ``eps`` (constant on the training set) is only centred.
    """

    def __init__(self, per="feature", eps=1e-8, shape=None):
        self.eps = _check_eps("Standardize", eps)
        super().__init__(per, shape)

    def get_config(self):
        return {"eps": self.eps, **super().get_config()}

    def _buffer_shapes(self, shape):
        s = _stat_shape(self.per, shape)
        return {"mean": s, "std": s}

    def _statistics(self, x):
        axes = _reduce_axes(self.per, x.ndim)
        shape = _stat_shape(self.per, self.shape)
        mean = x.mean(axis=axes, dtype=np.float64)
        var = np.zeros_like(mean)
        for start in range(0, len(x), _CHUNK):  # two passes, in float64
            chunk = x[start : start + _CHUNK].astype(np.float64) - mean.reshape((1,) + shape)
            var += (chunk * chunk).sum(axis=axes).reshape(var.shape)
        count = x.size // max(mean.size, 1)  # values behind each statistic
        return {"mean": mean.reshape(shape), "std": np.sqrt(var / count).reshape(shape)}

    def _coefficients(self, dtype):
        mean, std = self.buffers["mean"], self.buffers["std"]
        scale = 1.0 / np.where(std > self.eps, std, 1.0)
        return scale.astype(dtype), (-mean * scale).astype(dtype)


def _covariance(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean (D,), biased covariance (D, D)) of x (N, ...) flattened, in float64, by chunks."""
    flat = x.reshape(len(x), -1)
    mean = flat.mean(axis=0, dtype=np.float64)
    cov = np.zeros((flat.shape[1], flat.shape[1]))
    for start in range(0, len(flat), _CHUNK):
        chunk = flat[start : start + _CHUNK].astype(np.float64) - mean
        cov += chunk.T @ chunk
    return mean, cov / len(flat)


def _eigen(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending, clipped at 0) and eigenvectors (columns) of a covariance.

    Each eigenvector's sign is fixed (its largest entry positive) so results are
    reproducible across LAPACK builds.
    """
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1]
    values, vectors = np.maximum(values[order], 0.0), vectors[:, order]
    signs = np.sign(vectors[np.abs(vectors).argmax(axis=0), np.arange(vectors.shape[1])])
    return values, vectors * np.where(signs == 0, 1.0, signs)


class _Linear(_Preprocessing):
    """y = (x_flat - mean) @ W: a projection fitted on the training set."""

    def _matrix(self) -> np.ndarray:
        raise NotImplementedError

    def _apply(self, x):
        flat = x.reshape(len(x), -1)
        W = self._matrix()
        b = -(self.buffers["mean"] @ W)
        return self.ops.affine(np.ascontiguousarray(flat), W.astype(x.dtype), b.astype(x.dtype))

    def _apply_backward(self, dy):
        W = self._matrix().astype(dy.dtype)
        return dy.reshape(len(dy), -1) @ W.T


class PCA(_Linear):
    """PCA decorrelation: y = (x - mean) @ U, the coordinates along the principal axes.

    U holds the eigenvectors of the training set's covariance (of the flattened
    samples), by decreasing variance, so the training set's transform has a diagonal
    covariance with the variances (eigenvalues) in ``buffers["variances"]``. Keep the
    first ``n_components`` (default all); ``whiten=True`` also divides each
    coordinate by sqrt(variance + eps), giving an identity covariance. Output (N, K).
    """

    def __init__(self, n_components=None, whiten=False, eps=1e-5, shape=None):
        if n_components is not None and (
            not isinstance(n_components, (int, np.integer))
            or isinstance(n_components, bool)
            or n_components < 1
        ):
            raise ValueError(f"PCA: n_components must be a positive integer or None, got {n_components!r}")
        self.n_components = None if n_components is None else int(n_components)
        self.whiten = bool(whiten)
        self.eps = _check_eps("PCA", eps)
        super().__init__(shape)

    def get_config(self):
        return {
            "n_components": self.n_components,
            "whiten": self.whiten,
            "eps": self.eps,
            **super().get_config(),
        }

    def _components(self, features: int) -> int:
        if self.n_components is not None and self.n_components > features:
            raise ValueError(f"PCA: n_components={self.n_components} exceeds the {features} input features")
        return self.n_components or features

    def _buffer_shapes(self, shape):
        features = int(np.prod(shape))
        k = self._components(features)
        return {"mean": (features,), "components": (features, k), "variances": (k,)}

    def _statistics(self, x):
        mean, cov = _covariance(x)
        k = self._components(cov.shape[0])
        values, vectors = _eigen(cov)
        if self.whiten and self.eps == 0 and values[:k].min() <= 0:
            raise ValueError("PCA.fit: a kept component has zero variance; use eps > 0 to whiten")
        return {"mean": mean, "components": vectors[:, :k], "variances": values[:k]}

    def _matrix(self):
        U = self.buffers["components"]
        if self.whiten:
            return U / np.sqrt(self.buffers["variances"] + self.eps)
        return U

    def output_shape(self, input_shape):
        super().output_shape(input_shape)
        features = int(np.prod(input_shape))
        return (self._components(features),)


class ZCA(_Linear):
    """ZCA whitening: y = (x - mean) @ U diag(1 / sqrt(variance + eps)) U^T.

    The whitened training set has (for eps -> 0) an identity covariance, and unlike
    PCA whitening each output stays in the input's place (the same shape), as close to
    the input as a whitening can be. ``eps`` keeps directions of near-zero variance
    (for images: constant border pixels) from being blown up; images usually want
    eps around 0.01-0.1.
    """

    def __init__(self, eps=1e-5, shape=None):
        self.eps = _check_eps("ZCA", eps)
        super().__init__(shape)

    def get_config(self):
        return {"eps": self.eps, **super().get_config()}

    def _buffer_shapes(self, shape):
        features = int(np.prod(shape))
        return {"mean": (features,), "matrix": (features, features)}

    def _statistics(self, x):
        mean, cov = _covariance(x)
        values, vectors = _eigen(cov)
        if self.eps == 0 and values.min() <= 0:
            raise ValueError("ZCA.fit: the covariance is singular; use eps > 0")
        matrix = (vectors / np.sqrt(values + self.eps)) @ vectors.T
        return {"mean": mean, "matrix": matrix}

    def _matrix(self):
        return self.buffers["matrix"]

    def _apply(self, x):
        return super()._apply(x).reshape(x.shape)
