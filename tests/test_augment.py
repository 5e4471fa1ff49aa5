"""Data augmentation: kernels against NumPy/SciPy references, seeding, shapes, labels, fit."""

import numpy as np
import pytest
from scipy import ndimage

import fastnn as fnn
from fastnn import augment as aug
from fastnn._config import PARALLEL_THRESHOLD
from fastnn.kernels import augment as augment_kernels

DTYPES = [np.float32, np.float64]
# small batches run the serial builds, large ones the parallel builds
SHAPES = [(3, 1, 5, 7), (2, 3, 8, 8), (42, 1, 28, 28)]


def images(shape, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).random(shape).astype(dtype)


def reference_shift(x, dy, dx):
    """Readable reference: pad with zeros, then cut the window that moves the content."""
    n, c, h, w = x.shape
    out = np.zeros_like(x)
    padded = np.pad(x, ((0, 0), (0, 0), (h, h), (w, w)))
    for k in range(n):
        if abs(dy[k]) < h and abs(dx[k]) < w:
            out[k] = padded[k, :, h - dy[k] : 2 * h - dy[k], w - dx[k] : 2 * w - dx[k]]
    return out


def test_shapes_cover_both_builds():
    sizes = [int(np.prod(s)) for s in SHAPES]
    assert min(sizes) < PARALLEL_THRESHOLD <= max(sizes)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_shift_matches_reference_exactly(dtype, shape):
    x = images(shape, dtype)
    rng = np.random.default_rng(1)
    n, _, h, w = shape
    dy = rng.integers(-h - 1, h + 2, n)
    dx = rng.integers(-w - 1, w + 2, n)
    dy[0], dx[0] = 0, 0
    out = aug.shift(x, dy, dx)
    assert out.dtype == dtype and out.shape == shape
    np.testing.assert_array_equal(out, reference_shift(x, dy, dx))
    np.testing.assert_array_equal(out[0], x[0])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_flip_matches_numpy_exactly(dtype, shape):
    x = images(shape, dtype)
    flags = np.arange(shape[0]) % 2 == 0
    out = aug.flip_horizontal(x, flags)
    expected = np.where(flags[:, None, None, None], x[..., ::-1], x)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(aug.flip_horizontal(x), x[..., ::-1])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_warp_matches_scipy_bilinear(dtype, shape):
    x = images(shape, dtype, seed=2)
    rng = np.random.default_rng(3)
    n = shape[0]
    A = aug.affine_matrices(
        shape,
        rng.uniform(-30, 30, n),
        rng.uniform(0.8, 1.25, n),
        rng.uniform(-2, 2, n),
        rng.uniform(-2, 2, n),
    )
    out = aug.warp(x, A)
    assert out.dtype == dtype and out.shape == shape
    expected = out.astype(np.float64)
    for k in range(0, n, 5):
        for c in range(shape[1]):
            expected[k, c] = ndimage.affine_transform(
                x[k, c].astype(np.float64),
                A[k, :, :2],
                offset=A[k, :, 2],
                order=1,
                mode="grid-constant",
                cval=0.0,
            )
    tol = 1e-12 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(out, expected, atol=tol, rtol=0)


def test_rotation_direction_and_identity():
    x = images((4, 2, 9, 9))
    np.testing.assert_allclose(aug.rotate(x, 90), np.rot90(x, 1, axes=(2, 3)), atol=1e-6)
    np.testing.assert_allclose(aug.rotate(x, -90), np.rot90(x, -1, axes=(2, 3)), atol=1e-6)
    np.testing.assert_array_equal(aug.rotate(x, 0), x)
    np.testing.assert_array_equal(aug.zoom(x, 1.0), x)
    # a whole-pixel translation through warp is the shift kernel
    moved = aug.warp(x, aug.affine_matrices(x.shape, dy=2, dx=-1))
    np.testing.assert_allclose(moved, aug.shift(x, 2, -1), atol=1e-6)


def test_zoom_enlarges_about_the_centre():
    x = np.zeros((1, 1, 9, 9), np.float32)
    x[0, 0, 3:6, 3:6] = 1
    big = aug.zoom(x, 2.0)
    assert (big >= 0.5).sum() >= 2 * (x > 0.5).sum()
    assert big[0, 0, 4, 4] == 1 and big[0, 0, 0, 0] == 0


def test_random_crop_is_pad_then_crop():
    x = images((6, 3, 8, 8))
    pad = 3
    out = aug.RandomCrop(pad)(x, np.random.default_rng(5))
    offsets = np.random.default_rng(5).integers(0, 2 * pad + 1, size=(2, 6))
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    for k in range(6):
        i, j = offsets[0, k], offsets[1, k]
        np.testing.assert_array_equal(out[k], padded[k, :, i : i + 8, j : j + 8])


TRANSFORMS = [
    aug.RandomShift(2),
    aug.RandomCrop(4),
    aug.RandomHorizontalFlip(0.5),
    aug.RandomRotation(15),
    aug.RandomScale(0.9, 1.1),
    aug.RandomAffine(10, (0.9, 1.1), 2),
    aug.Compose([aug.RandomShift(1), aug.RandomRotation(10)]),
]


@pytest.mark.parametrize("transform", TRANSFORMS, ids=lambda t: type(t).__name__)
@pytest.mark.parametrize("dtype", DTYPES)
def test_random_transforms_keep_shape_dtype_and_are_seeded(transform, dtype):
    x = images((32, 1, 12, 12), dtype)
    before = x.copy()
    a = transform(x, np.random.default_rng(7))
    b = transform(x, np.random.default_rng(7))
    c = transform(x, np.random.default_rng(8))
    assert a.shape == x.shape and a.dtype == dtype
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a, x)
    np.testing.assert_array_equal(x, before)  # the input is never modified
    # (N, H, W) batches keep their shape too
    assert transform(x[:, 0], np.random.default_rng(7)).shape == (32, 12, 12)


def test_transforms_reject_flattened_batches_and_bad_arguments():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        aug.RandomShift(1)(np.zeros((4, 784), np.float32), 0)
    with pytest.raises(TypeError, match="float"):
        aug.shift(np.zeros((1, 1, 2, 2), np.uint8), 1, 1)
    with pytest.raises(ValueError, match="max_shift"):
        aug.RandomShift(-1)
    with pytest.raises(ValueError, match="scale"):
        aug.RandomAffine(scale=(0, 1))
    with pytest.raises(ValueError, match="dy"):
        aug.shift(np.zeros((3, 1, 2, 2), np.float32), [1, 2], 0)


def test_expand_is_nielsens_five_fold_dataset():
    x = images((5, 1, 6, 6))
    t = np.arange(5) + 3
    x5, t5 = aug.expand(x, t)
    assert x5.shape == (25, 1, 6, 6) and x5.dtype == np.float32
    np.testing.assert_array_equal(t5, np.tile(t, 5))
    np.testing.assert_array_equal(x5[:5], x)
    # Nielsen's expand_mnist.py: np.roll by one pixel, then blank the wrapped row/column
    for block, (d, axis) in enumerate([(-1, 2), (1, 2), (-1, 3), (1, 3)], start=1):
        rolled = np.roll(x, d, axis=axis)
        index = [slice(None)] * 4
        index[axis] = 0 if d == 1 else -1
        rolled[tuple(index)] = 0
        np.testing.assert_array_equal(x5[5 * block : 5 * block + 5], rolled)
    assert aug.expand(x[:, 0], t)[0].shape == (25, 6, 6)


def test_fit_applies_augmentation_per_batch_with_labels_untouched():
    (x, t), _ = fnn.datasets.load_digits(seed=0)
    x, t = x[:200], t[:200]
    seen = []

    def recording(transform):
        def apply(xb, rng):
            out = transform(xb, rng)
            assert out.shape == xb.shape and out.dtype == xb.dtype
            seen.append(out.copy())
            return out

        return apply

    def train(seed):
        model = fnn.models.mlp(in_features=64, hidden=(32,), seed=0)
        history = model.fit(
            x,
            t,
            epochs=2,
            batch_size=50,
            verbose=0,
            seed=seed,
            augment=recording(aug.Compose([aug.RandomShift(1), aug.RandomRotation(10)])),
        )
        return model, history

    model_a, history = train(seed=3)
    assert len(seen) == 8  # every batch of every epoch
    assert not any(np.array_equal(seen[i], seen[i + 4]) for i in range(4))  # fresh per epoch
    model_b, _ = train(seed=3)  # reproducible under a seed
    np.testing.assert_array_equal(model_a.flat_params, model_b.flat_params)
    for i in range(8):
        np.testing.assert_array_equal(seen[i], seen[i + 8])
    model_c, _ = train(seed=4)
    assert not np.array_equal(model_a.flat_params, model_c.flat_params)
    assert np.isfinite(history["loss"]).all()


def test_augment_kernels_stay_float32():
    from test_float32_kernels import double_math, is_float32_signature, llvm_ir

    for shape in ((2, 1, 4, 4), (64, 1, 28, 28)):
        x = images(shape)
        aug.shift(x, 1, -1)
        aug.flip_horizontal(x)
        aug.rotate(x, 10)
    for name in ("shift", "flip_horizontal", "warp_bilinear"):
        for build in ("serial", "parallel"):
            dispatcher = getattr(getattr(augment_kernels, name), build)
            signatures = [s for s in dispatcher.signatures if is_float32_signature(s)]
            assert signatures, (name, build)
            for sig in signatures:
                assert not double_math(llvm_ir(dispatcher, sig)), (name, build)
