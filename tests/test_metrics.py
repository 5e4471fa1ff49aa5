"""fnn.metrics: hand-computed small cases, scikit-learn as the oracle, and the error texts."""

import numpy as np
import pytest

from fastnn import metrics

# A 3-class case worked by hand:
#   true      0 0 0 1 1 2
#   predicted 0 0 1 1 2 2
# confusion (rows true, columns predicted): [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
# precision: 2/2, 1/2, 1/2   recall: 2/3, 1/2, 1/1   support: 3, 2, 1
PRED = np.array([0, 0, 1, 1, 2, 2])
TRUE = np.array([0, 0, 0, 1, 1, 2])


def test_hand_computed_confusion_matrix_precision_recall_f1():
    assert metrics.confusion_matrix(PRED, TRUE).tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    np.testing.assert_allclose(metrics.precision(PRED, TRUE), [1, 1 / 2, 1 / 2])
    np.testing.assert_allclose(metrics.recall(PRED, TRUE), [2 / 3, 1 / 2, 1])
    f1 = [2 * p * r / (p + r) for p, r in [(1, 2 / 3), (1 / 2, 1 / 2), (1 / 2, 1)]]
    np.testing.assert_allclose(metrics.f1_score(PRED, TRUE), f1)
    assert metrics.precision(PRED, TRUE, average="macro") == pytest.approx(2 / 3)
    assert metrics.recall(PRED, TRUE, average="weighted") == pytest.approx((3 * 2 / 3 + 2 / 2 + 1) / 6)
    assert metrics.f1_score(PRED, TRUE, average="micro") == pytest.approx(4 / 6)
    assert metrics.accuracy(PRED, TRUE) == pytest.approx(4 / 6)


def test_scores_and_one_hot_targets_mean_the_same_as_indices():
    scores = np.eye(3)[PRED] * 2.0 - 0.5  # argmax is PRED
    onehot = np.eye(3, dtype=np.float32)[TRUE]
    assert np.array_equal(metrics.confusion_matrix(scores, onehot), metrics.confusion_matrix(PRED, TRUE))
    assert metrics.accuracy(scores, TRUE[:, None]) == metrics.accuracy(PRED, TRUE)


def test_a_class_never_predicted_scores_zero_without_a_warning():
    pred, true = np.array([0, 0, 0]), np.array([0, 1, 1])
    with np.errstate(all="raise"):
        np.testing.assert_array_equal(metrics.precision(pred, true), [1 / 3, 0])
        np.testing.assert_array_equal(metrics.f1_score(pred, true), [0.5, 0])
    # num_classes adds a class that appears nowhere: zero everywhere, and it counts in "macro"
    assert metrics.confusion_matrix(pred, true, num_classes=4).shape == (4, 4)
    assert metrics.recall(pred, true, average="macro", num_classes=4) == pytest.approx(1 / 4)


def test_top_k_accuracy_by_hand():
    scores = np.array([[0.1, 0.5, 0.4], [0.7, 0.2, 0.1], [0.2, 0.3, 0.5]])
    true = np.array([2, 2, 0])
    assert metrics.top_k_accuracy(scores, true, k=1) == 0
    assert metrics.top_k_accuracy(scores, true, k=2) == pytest.approx(1 / 3)
    assert metrics.top_k_accuracy(scores, true, k=3) == 1
    assert metrics.top_k_accuracy(scores, true) == 1  # k=5 >= C


def test_regression_metrics_by_hand():
    y = np.array([[1.0], [2.0], [4.0]])
    t = np.array([1.0, 3.0, 2.0])
    assert metrics.mean_squared_error(y, t) == pytest.approx((0 + 1 + 4) / 3)
    assert metrics.mean_absolute_error(y, t) == pytest.approx((0 + 1 + 2) / 3)
    assert metrics.r2_score(y, t) == pytest.approx(1 - 5 / 2)  # t's mean is 2, sum of squares 2
    assert metrics.r2_score(t, t) == 1
    assert metrics.r2_score([1.0, 2.0], [3.0, 3.0]) == 0  # constant target, missed
    assert metrics.r2_score([3.0, 3.0], [3.0, 3.0]) == 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classification_metrics_equal_scikit_learn(seed):
    skm = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    k, n = 5, 200
    scores = rng.standard_normal((n, k))
    true = rng.integers(0, k, n)
    true[true == 3] = 4  # class 3 is never true, so its recall divides by zero
    pred = scores.argmax(axis=1)
    labels = np.arange(k)
    assert np.array_equal(
        metrics.confusion_matrix(scores, true), skm.confusion_matrix(true, pred, labels=labels)
    )
    assert metrics.accuracy(scores, true) == pytest.approx(skm.accuracy_score(true, pred))
    for k_top in (1, 2, 3):
        expected = skm.top_k_accuracy_score(true, scores, k=k_top, labels=labels)
        assert metrics.top_k_accuracy(scores, true, k=k_top) == pytest.approx(expected)
    ours = {"precision": metrics.precision, "recall": metrics.recall, "f1": metrics.f1_score}
    theirs = {"precision": skm.precision_score, "recall": skm.recall_score, "f1": skm.f1_score}
    for name in ours:
        for average in (None, "macro", "micro", "weighted"):
            expected = theirs[name](true, pred, labels=labels, average=average, zero_division=0)
            np.testing.assert_allclose(ours[name](scores, true, average=average), expected, err_msg=name)


def test_regression_metrics_equal_scikit_learn():
    skm = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y, t = rng.standard_normal((50, 3)), rng.standard_normal((50, 3))
    assert metrics.mean_squared_error(y, t) == pytest.approx(skm.mean_squared_error(t, y))
    assert metrics.mean_absolute_error(y, t) == pytest.approx(skm.mean_absolute_error(t, y))
    assert metrics.r2_score(y, t) == pytest.approx(skm.r2_score(t, y))
    assert metrics.r2_score(y[:, 0], t[:, 0]) == pytest.approx(skm.r2_score(t[:, 0], y[:, 0]))


def test_classification_report_holds_the_per_class_numbers():
    text = metrics.classification_report(PRED, TRUE, class_names=["cat", "dog", "emu"])
    lines = {line.split()[0]: line.split()[1:] for line in text.splitlines() if line.strip()}
    assert [float(v) for v in lines["cat"]] == pytest.approx([1, 2 / 3, 0.8, 3], abs=1e-4)
    assert float(lines["accuracy"][0]) == pytest.approx(4 / 6, abs=1e-4)
    with pytest.raises(ValueError, match="classification_report: expected 3 class names, got 2"):
        metrics.classification_report(PRED, TRUE, class_names=["a", "b"])


def test_errors_name_the_function_and_the_shapes():
    with pytest.raises(ValueError, match=r"accuracy: the predictions hold 6 samples but the targets 5"):
        metrics.accuracy(PRED, TRUE[:5])
    with pytest.raises(
        ValueError, match=r"precision: expected predictions .* got shape \(6, 1\).*predict_classes"
    ):
        metrics.precision(PRED[:, None].astype(float), TRUE)
    with pytest.raises(ValueError, match=r"recall: class indices must be integers|recall: .*integers"):
        metrics.recall(PRED.astype(float), TRUE)
    with pytest.raises(ValueError, match=r"f1_score: average must be one of .*'macro'.* got 'binary'"):
        metrics.f1_score(PRED, TRUE, average="binary")
    with pytest.raises(
        ValueError, match=r"confusion_matrix: expected true classes in \[0, 2\), got labels in \[0, 2\]"
    ):
        metrics.confusion_matrix(PRED % 2, TRUE, num_classes=2)
    with pytest.raises(
        ValueError, match=r"top_k_accuracy: expected scores of shape \(N, C\), got shape \(6,\)"
    ):
        metrics.top_k_accuracy(PRED, TRUE)
    with pytest.raises(ValueError, match="top_k_accuracy: k must be a positive integer, got 0"):
        metrics.top_k_accuracy(np.eye(6), TRUE, k=0)
    with pytest.raises(
        ValueError, match=r"mean_squared_error: outputs of shape \(3, 2\) and targets of shape \(3,\)"
    ):
        metrics.mean_squared_error(np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="accuracy: no samples"):
        metrics.accuracy(np.zeros(0, np.int64), np.zeros(0, np.int64))
