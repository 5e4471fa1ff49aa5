"""Preprocessing: fitted on the training set, applied to others, saved with the model."""

import numpy as np
import pytest

import fastnn as fnn
from fastnn.preprocessing import PCA, ZCA, MinMaxScale, NotFittedError, Standardize


def correlated(n=500, d=6, seed=0, shift=0.0):
    """Samples with a full-rank, strongly non-diagonal covariance and non-zero mean."""
    rng = np.random.default_rng(seed)
    mixing = rng.standard_normal((d, d)) + 2 * np.eye(d)
    return rng.standard_normal((n, d)) @ mixing + 3 + shift


def covariance(y):
    y = y.reshape(len(y), -1).astype(np.float64)
    return np.cov(y, rowvar=False, bias=True)


# ------------------------------------------------------------------- min-max


@pytest.mark.parametrize("per", ["feature", "channel", "global"])
def test_min_max_maps_the_training_range_onto_the_target(per):
    rng = np.random.default_rng(1)
    x = (rng.random((40, 3, 4, 4)) * [[[[2]], [[5]], [[9]]]] - 1).astype(np.float32)
    scale = MinMaxScale((-1, 1), per=per).fit(x)
    y = scale.transform(x)
    assert y.dtype == np.float32 and y.shape == x.shape
    axes = {"feature": 0, "channel": (0, 2, 3), "global": None}[per]
    np.testing.assert_allclose(y.min(axis=axes), -1, atol=1e-6)
    np.testing.assert_allclose(y.max(axis=axes), 1, atol=1e-6)


def test_min_max_uses_training_statistics_on_other_data():
    x_train = np.array([[0.0, 10.0], [2.0, 10.0]])
    scale = MinMaxScale().fit(x_train)
    # a constant feature goes to `low`; values beyond the training range map beyond [0, 1]
    np.testing.assert_allclose(
        scale.transform(np.array([[4.0, 10.0], [1.0, 7.0]])), [[2.0, 0.0], [0.5, -3.0]]
    )


# ------------------------------------------------------------ standardisation


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_standardize_gives_zero_mean_unit_variance_on_the_training_set(dtype):
    x = (correlated() * [1, 10, 100, 0.1, 1, 1]).astype(dtype)
    x[:, 5] = 7.0  # a constant feature is only centred
    scale = Standardize().fit(x)
    y = scale.transform(x)
    assert y.dtype == dtype
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(y[:, :5].std(axis=0), 1, rtol=1e-5)
    np.testing.assert_array_equal(y[:, 5], 0)
    # the test set gets the training set's statistics, not its own
    x_test = correlated(200, seed=2, shift=1.0) * [1, 10, 100, 0.1, 1, 1]
    y_test = scale.transform(x_test)
    np.testing.assert_allclose(
        y_test[:, :5], (x_test[:, :5] - x[:, :5].mean(0)) / x[:, :5].std(0), rtol=1e-4, atol=1e-4
    )
    assert np.abs(y_test[:, :5].mean(axis=0)).min() > 0.05


def test_standardize_per_channel_and_global():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((30, 2, 5, 5)) * [[[[2]], [[0.5]]]] + [[[[1]], [[-4]]]]
    y = Standardize(per="channel").fit_transform(x)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(y.std(axis=(0, 2, 3)), 1)
    g = Standardize(per="global").fit(x)
    assert g.buffers["mean"].shape == (1, 1, 1)
    np.testing.assert_allclose(g.transform(x), (x - x.mean()) / x.std())


# ------------------------------------------------------------------ PCA, ZCA


def test_pca_decorrelates_by_decreasing_variance():
    x = correlated()
    pca = PCA().fit(x)
    y = pca.transform(x)
    cov = covariance(y)
    variances = pca.buffers["variances"]
    np.testing.assert_allclose(cov, np.diag(variances), atol=1e-9)
    assert np.all(np.diff(variances) <= 0)
    np.testing.assert_allclose(variances.sum(), np.trace(covariance(x)))


def test_pca_matches_scikit_learn_up_to_sign():
    sklearn = pytest.importorskip("sklearn.decomposition")
    x = correlated(300, 8, seed=4)
    ours = PCA(n_components=3).fit(x).transform(x)
    theirs = sklearn.PCA(n_components=3).fit(x).transform(x)
    assert ours.shape == (300, 3)
    np.testing.assert_allclose(np.abs(ours), np.abs(theirs), rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize(
    "make", [lambda: ZCA(eps=0.0), lambda: PCA(whiten=True, eps=0.0)], ids=["zca", "pca-whiten"]
)
def test_whitening_yields_identity_covariance_on_the_training_set(make):
    x = correlated(800, 6)
    assert np.abs(covariance(x) - np.eye(6)).max() > 1  # far from white before
    white = make().fit(x)
    y = white.transform(x)
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-10)
    np.testing.assert_allclose(covariance(y), np.eye(6), atol=1e-9)
    # float32, through the model's dtype: identity to float32 precision
    y32 = white.transform(x.astype(np.float32))
    assert y32.dtype == np.float32
    np.testing.assert_allclose(covariance(y32), np.eye(6), atol=1e-4)


def test_zca_keeps_the_image_shape_and_is_symmetric():
    x = np.random.default_rng(5).random((300, 1, 4, 4))
    zca = ZCA(eps=1e-5).fit(x)
    y = zca.transform(x)
    assert y.shape == x.shape
    W = zca.buffers["matrix"]
    np.testing.assert_allclose(W, W.T, atol=1e-12)
    np.testing.assert_allclose(covariance(y), np.eye(16), atol=1e-3)  # eps shrinks it a little


# --------------------------------------------------------- as layers of a model

PREPROCESSORS = [
    lambda: MinMaxScale(),
    lambda: Standardize(),
    lambda: Standardize(per="channel"),
    lambda: PCA(),
    lambda: PCA(n_components=5, whiten=True),
    lambda: ZCA(eps=1e-2),
]


def small_model(first, backend="numba", dtype="float32", seed=0):
    out = first.output_shape((1, 3, 3))
    flatten = [] if len(out) == 1 else [fnn.Flatten()]
    return fnn.Sequential(
        [first, *flatten, fnn.Dense(int(np.prod(out)), 4), fnn.Tanh(), fnn.Dense(4, 3)],
        backend=backend,
        dtype=dtype,
        seed=seed,
    )


@pytest.mark.parametrize("make", PREPROCESSORS)
def test_saved_and_loaded_with_the_model(tmp_path, make):
    rng = np.random.default_rng(6)
    x = rng.random((60, 1, 3, 3), dtype=np.float32) * 4 + 1
    first = make().fit(x)
    model = small_model(first)
    model.fit(x, rng.integers(0, 3, 60), epochs=1, batch_size=20, verbose=0)
    model.save(tmp_path / "model.npz")
    loaded = fnn.load(tmp_path / "model.npz")
    layer = loaded.layers[0]
    assert type(layer) is type(first) and layer.get_config() == first.get_config()
    assert layer.fitted
    for name, array in first.buffers.items():
        np.testing.assert_array_equal(layer.buffers[name], array)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


@pytest.mark.parametrize("make", PREPROCESSORS)
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_backward_is_the_exact_input_gradient(make, backend):
    rng = np.random.default_rng(7)
    x = rng.random((40, 1, 3, 3)) + 0.5
    model = small_model(make().fit(x), backend=backend, dtype="float64")
    errors = fnn.gradcheck(model, x[:4], rng.integers(0, 3, 4), check_input=True, verbose=False)
    assert errors["input"] < 1e-6, errors


@pytest.mark.parametrize("make", PREPROCESSORS)
def test_an_unfitted_transform_is_a_clear_error(make):
    layer = make()
    with pytest.raises(NotFittedError, match=r"not fitted; call .*\.fit\(x_train\)"):
        layer.transform(np.zeros((2, 1, 3, 3), np.float32))
    model = fnn.Sequential([layer, fnn.Flatten()])
    with pytest.raises(NotFittedError, match="not fitted"):
        model.predict(np.zeros((2, 1, 3, 3), np.float32))
    # rebuilt from a config that has room for statistics but none loaded: still unfitted
    fitted = make().fit(np.random.default_rng(0).random((20, 1, 3, 3)))
    rebuilt = type(fitted)(**fitted.get_config())
    assert not rebuilt.fitted
    with pytest.raises(NotFittedError):
        rebuilt.transform(np.zeros((2, 1, 3, 3)))


def test_input_shape_must_match_the_fitted_one():
    scale = Standardize().fit(np.zeros((5, 1, 3, 3)))
    with pytest.raises(ValueError, match=r"fitted on samples of shape \(1, 3, 3\)"):
        scale.transform(np.zeros((5, 1, 4, 4)))
    with pytest.raises(ValueError, match="per"):
        Standardize(per="pixel")
    with pytest.raises(ValueError, match="n_components"):
        PCA(n_components=20).fit(np.random.default_rng(0).random((30, 9)))
    with pytest.raises(ValueError, match="NaN"):
        ZCA().fit(np.full((4, 2), np.nan))
