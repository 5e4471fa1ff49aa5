"""Data augmentation on whole batches, as Numba kernels (:mod:`fastnn.kernels.augment`).

Transforms are callables ``transform(x_batch, rng) -> x_batch``, the protocol of
``fit(..., augment=...)``: ``fit`` calls the transform on every training batch with
its own seeded generator, so each epoch sees fresh random variants and a seeded run
is reproducible. Labels are untouched (every transform keeps the class of the image),
and so are the batch's shape and dtype.

    augment = fnn.augment.Compose([fnn.augment.RandomShift(2), fnn.augment.RandomRotation(10)])
    model.fit(x, t, epochs=5, augment=augment)

Images are (N, C, H, W) (or (N, H, W)). Pixels that come from outside the image are 0.
The deterministic batch functions (:func:`shift`, :func:`flip_horizontal`, :func:`warp`,
:func:`rotate`, :func:`zoom`) take the per-sample parameters explicitly, and
:func:`expand` is Nielsen's 1-pixel expansion of a whole dataset.
"""

from __future__ import annotations

import numbers

import numpy as np

from .kernels import augment as kernels

__all__ = [
    "shift",
    "flip_horizontal",
    "warp",
    "rotate",
    "zoom",
    "affine_matrices",
    "expand",
    "RandomShift",
    "RandomCrop",
    "RandomHorizontalFlip",
    "RandomRotation",
    "RandomScale",
    "RandomAffine",
    "Compose",
    "from_spec",
]


# ------------------------------------------------------------------ batch functions


def _images(x, where: str) -> tuple[np.ndarray, tuple]:
    """x as a contiguous, native float (N, C, H, W) array, and the shape to return."""
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if x.dtype.kind != "f" or x.dtype.itemsize not in (4, 8):
        raise TypeError(f"{where}: expected float32 or float64 images, got dtype {x.dtype}")
    if x.ndim not in (3, 4):
        raise ValueError(
            f"{where}: expected images of shape (N, C, H, W) or (N, H, W), got "
            f"{x.shape} (augment images before Flatten, not flattened vectors)"
        )
    shape = x.shape
    x4 = x if x.ndim == 4 else x[:, None]
    if not x4.dtype.isnative:
        x4 = x4.astype(x4.dtype.newbyteorder("="))
    return np.ascontiguousarray(x4), shape


def _per_sample(values, n: int, where: str, name: str, dtype) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim == 0:
        array = np.full(n, array)
    if array.shape != (n,):
        raise ValueError(
            f"{where}: expected {name} as a scalar or one value per sample ({n},), got shape {array.shape}"
        )
    if dtype == np.int64:
        if array.dtype.kind not in "iub":
            raise TypeError(f"{where}: {name} must be integers, got dtype {array.dtype}")
    elif not np.isfinite(array.astype(np.float64)).all():
        raise ValueError(f"{where}: {name} must be finite")
    return np.ascontiguousarray(array, dtype=dtype)


def shift(x, dy, dx) -> np.ndarray:
    """Each image moved by whole pixels: out[n, :, i, j] = x[n, :, i - dy[n], j - dx[n]].

    ``dy``/``dx``: ints, one per sample or one for all; positive moves down/right.
    Pixels moved in from outside are 0.
    """
    x4, shape = _images(x, "shift")
    n = len(x4)
    out = np.empty_like(x4)
    kernels.shift(
        x4.size,
        x4,
        _per_sample(dy, n, "shift", "dy", np.int64),
        _per_sample(dx, n, "shift", "dx", np.int64),
        out,
    )
    return out.reshape(shape)


def flip_horizontal(x, flags=True) -> np.ndarray:
    """Images mirrored left-right where ``flags`` (one bool per sample, or one for all) is set."""
    x4, shape = _images(x, "flip_horizontal")
    out = np.empty_like(x4)
    kernels.flip_horizontal(
        x4.size, x4, _per_sample(flags, len(x4), "flip_horizontal", "flags", np.int64), out
    )
    return out.reshape(shape)


def warp(x, matrices) -> np.ndarray:
    """Affine resampling with bilinear interpolation, 0 outside the image.

    ``matrices`` (N, 2, 3) (or (2, 3) for all) map each output pixel (row i, column j)
    to the point sampled in the input: (r, s) = M @ (i, j, 1). Equals
    ``scipy.ndimage.affine_transform(img, M[:, :2], offset=M[:, 2], order=1,
    mode="grid-constant")`` on each image plane.
    """
    x4, shape = _images(x, "warp")
    A = np.asarray(matrices, dtype=np.float64)
    if A.shape == (2, 3):
        A = np.broadcast_to(A, (len(x4), 2, 3))
    if A.shape != (len(x4), 2, 3):
        raise ValueError(f"warp: expected matrices of shape ({len(x4)}, 2, 3) or (2, 3), got {A.shape}")
    if not np.isfinite(A).all():
        raise ValueError("warp: matrices must be finite")
    out = np.empty_like(x4)
    kernels.warp_bilinear(x4.size, x4, np.ascontiguousarray(A, dtype=x4.dtype), out)
    return out.reshape(shape)


def affine_matrices(shape, angles=0.0, scales=1.0, dy=0.0, dx=0.0) -> np.ndarray:
    """(N, 2, 3) maps for :func:`warp`: rotate by ``angles`` degrees (counter-clockwise as
    displayed, rows pointing down), zoom by ``scales`` (> 1 enlarges) about the image
    centre, then move by (``dy``, ``dx``) pixels. Each argument: a scalar or one per sample.
    """
    n, h, w = shape[0], shape[-2], shape[-1]
    angles = np.deg2rad(_per_sample(angles, n, "affine_matrices", "angles", np.float64))
    scales = _per_sample(scales, n, "affine_matrices", "scales", np.float64)
    if (scales <= 0).any():
        raise ValueError("affine_matrices: scales must be positive")
    dy = _per_sample(dy, n, "affine_matrices", "dy", np.float64)
    dx = _per_sample(dx, n, "affine_matrices", "dx", np.float64)
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    cos, sin = np.cos(angles) / scales, np.sin(angles) / scales
    # source = centre + R(-angle) / scale @ (output - centre - shift)
    A = np.empty((n, 2, 3))
    A[:, 0, 0], A[:, 0, 1] = cos, sin
    A[:, 1, 0], A[:, 1, 1] = -sin, cos
    oy, ox = cy + dy, cx + dx
    A[:, 0, 2] = cy - cos * oy - sin * ox
    A[:, 1, 2] = cx + sin * oy - cos * ox
    return A


def rotate(x, angles) -> np.ndarray:
    """Images rotated about their centre by ``angles`` degrees (counter-clockwise as displayed)."""
    return warp(x, affine_matrices(np.shape(x), angles=angles))


def zoom(x, scales) -> np.ndarray:
    """Images scaled about their centre by ``scales`` (> 1 enlarges), same output size."""
    return warp(x, affine_matrices(np.shape(x), scales=scales))


def expand(x, t, pixels: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Nielsen's expansion of a training set: every image plus its copies moved by
    ``pixels`` up, down, left and right (5x the data, labels repeated).

    Returns ``(x5, t5)`` = the blocks [x, up, down, left, right] concatenated, so
    ``t5[k * N + i] == t[i]``; shuffle (``fit`` does) before training.
    """
    x4, shape = _images(x, "expand")
    t = np.asarray(t)
    if len(t) != len(x4):
        raise ValueError(f"expand: x has {len(x4)} samples but t has {len(t)}")
    if not isinstance(pixels, (int, np.integer)) or isinstance(pixels, bool) or pixels < 1:
        raise ValueError(f"expand: pixels must be a positive integer, got {pixels!r}")
    blocks = [x4]
    for dy, dx in ((-pixels, 0), (pixels, 0), (0, -pixels), (0, pixels)):
        blocks.append(shift(x4, dy, dx))
    x5 = np.concatenate(blocks).reshape((5 * len(x4),) + shape[1:])
    return x5, np.concatenate([t] * 5)


# ------------------------------------------------------------------ random transforms


def _generator(rng) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _non_negative(where: str, name: str, value, integer=False):
    kinds = (int, np.integer) if integer else numbers.Real
    if not isinstance(value, kinds) or isinstance(value, bool) or not np.isfinite(value) or value < 0:
        kind = "integer" if integer else "number"
        raise ValueError(f"{where}: {name} must be a non-negative {kind}, got {value!r}")
    return int(value) if integer else float(value)


def _range(where: str, name: str, value) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {name} must be a pair (low, high), got {value!r}") from None
    if not (0 < low <= high and np.isfinite(high)):
        raise ValueError(f"{where}: {name} needs 0 < low <= high, got {value!r}")
    return low, high


class Transform:
    """Base class: ``transform(x, rng=None) -> x`` with fresh random parameters per sample."""

    def __call__(self, x, rng=None):
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class RandomShift(Transform):
    """Move each image by whole pixels, dy and dx uniform in [-max_shift, max_shift]."""

    def __init__(self, max_shift: int = 2):
        self.max_shift = _non_negative("RandomShift", "max_shift", max_shift, integer=True)

    def __call__(self, x, rng=None):
        rng = _generator(rng)
        k = self.max_shift
        d = rng.integers(-k, k + 1, size=(2, len(x)))
        return shift(x, d[0], d[1])


class RandomCrop(Transform):
    """Pad by ``pad`` zeros on each side, then crop the original size at a random offset
    (the CIFAR recipe); the same as a random whole-pixel shift by up to ``pad``."""

    def __init__(self, pad: int = 4):
        self.pad = _non_negative("RandomCrop", "pad", pad, integer=True)

    def __call__(self, x, rng=None):
        rng = _generator(rng)
        offsets = rng.integers(0, 2 * self.pad + 1, size=(2, len(x)))  # top-left corner
        return shift(x, self.pad - offsets[0], self.pad - offsets[1])


class RandomHorizontalFlip(Transform):
    """Mirror each image left-right with probability ``p`` (not for digits!)."""

    def __init__(self, p: float = 0.5):
        p = _non_negative("RandomHorizontalFlip", "p", p)
        if p > 1:
            raise ValueError(f"RandomHorizontalFlip: p must be in [0, 1], got {p!r}")
        self.p = p

    def __call__(self, x, rng=None):
        rng = _generator(rng)
        return flip_horizontal(x, rng.random(len(x)) < self.p)


class RandomAffine(Transform):
    """One bilinear resampling per image: rotation uniform in [-degrees, degrees], zoom
    uniform in ``scale`` = (low, high), shift uniform in [-max_shift, max_shift] pixels."""

    def __init__(self, degrees: float = 0.0, scale=(1.0, 1.0), max_shift: float = 0.0):
        self.degrees = _non_negative(type(self).__name__, "degrees", degrees)
        self.scale = _range(type(self).__name__, "scale", scale)
        self.max_shift = _non_negative(type(self).__name__, "max_shift", max_shift)

    def __call__(self, x, rng=None):
        rng = _generator(rng)
        n = len(x)
        angles = rng.uniform(-self.degrees, self.degrees, n)
        scales = rng.uniform(self.scale[0], self.scale[1], n)
        d = rng.uniform(-self.max_shift, self.max_shift, (2, n))
        return warp(x, affine_matrices(np.shape(x), angles, scales, d[0], d[1]))


class RandomRotation(RandomAffine):
    """Rotate each image about its centre by an angle uniform in [-degrees, degrees]."""

    def __init__(self, degrees: float = 10.0):
        super().__init__(degrees=degrees)


class RandomScale(RandomAffine):
    """Zoom each image about its centre by a factor uniform in [low, high]."""

    def __init__(self, low: float = 0.9, high: float = 1.1):
        super().__init__(scale=(low, high))


class Compose(Transform):
    """Apply ``transforms`` in order, all drawing from the one generator."""

    def __init__(self, transforms):
        self.transforms = list(transforms)
        for i, transform in enumerate(self.transforms):
            if not callable(transform):
                raise TypeError(f"Compose: transforms[{i}] is not callable: {transform!r}")

    def __call__(self, x, rng=None):
        rng = _generator(rng)
        for transform in self.transforms:
            x = transform(x, rng)
        return x


#: ``from_spec`` names: the transform and its default argument (sized for 28x28 digits).
SPEC_NAMES = {
    "shift": (RandomShift, 2),
    "crop": (RandomCrop, 2),
    "rotate": (RandomRotation, 10.0),
    "scale": (lambda s: RandomScale(1 - s, 1 + s), 0.1),
    "affine": (lambda s: RandomAffine(10.0 * s, (1 - 0.1 * s, 1 + 0.1 * s), 2.0 * s), 1.0),
    "flip": (RandomHorizontalFlip, 0.5),
}


def from_spec(text: str) -> Compose:
    """A pipeline from text such as ``"shift,rotate=15"`` (``fastnn train --augment``).

    Names: shift[=max pixels, 2], crop[=pad, 2], rotate[=degrees, 10], scale[=s: zoom in
    1 +- s, 0.1], affine[=strength, 1: 10 degrees, 1 +- 0.1 zoom, 2 pixels], flip[=p, 0.5].
    """
    transforms = []
    for item in filter(None, (part.strip() for part in str(text).split(","))):
        name, _, value = item.partition("=")
        if name not in SPEC_NAMES:
            raise ValueError(
                f"augment: unknown transform {name!r}; expected names from "
                f"{sorted(SPEC_NAMES)}, e.g. 'shift,rotate=15'"
            )
        make, default = SPEC_NAMES[name]
        try:
            argument = type(default)(value) if value else default
        except ValueError:
            raise ValueError(f"augment: {name}={value!r} is not a valid {type(default).__name__}") from None
        transforms.append(make(argument))
    if not transforms:
        raise ValueError(f"augment: no transform named in {text!r}")
    return Compose(transforms)
