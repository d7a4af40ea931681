"""Temperature scaling lowers ECE; metrics behave on known inputs."""
import numpy as np
import pytest

from ml.model import calibration
from ml.evaluation import metrics


def _overconfident(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    logits = rng.normal(0, 1, (n, 4))
    logits[np.arange(n), labels] += 2.0
    return logits * 4.0, labels           # scaled up 4x: far too confident


def test_temperature_scaling_lowers_ece_on_overconfident_logits():
    logits, labels = _overconfident()
    t = calibration.fit_temperature(logits, labels)
    before = calibration.expected_calibration_error(calibration.softmax(logits), labels)
    after = calibration.expected_calibration_error(calibration.softmax(logits, t), labels)
    assert t > 1.5
    assert after < before / 3


def test_temperature_does_not_change_the_predicted_class():
    logits, _ = _overconfident()
    np.testing.assert_array_equal(calibration.softmax(logits).argmax(1),
                                  calibration.softmax(logits, 3.7).argmax(1))


def test_softmax_rows_sum_to_one_even_for_huge_logits():
    p = calibration.softmax(np.array([[1000.0, 0, 0, 0], [0, 0, 0, 0]]))
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-6)


def test_metrics_on_a_known_confusion():
    y = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    p = np.array([0, 1, 1, 1, 2, 2, 3, 4])      # 4 = rejected by the guard
    s = metrics.summary(y, p, n_boot=50)
    assert s["accuracy"] == pytest.approx(6 / 8)
    assert s["per_class"]["glioma"]["recall"] == pytest.approx(0.5)
    assert s["per_class"]["meningioma"]["precision"] == pytest.approx(2 / 3)
    assert s["per_class"]["pituitary"]["recall"] == pytest.approx(0.5)
    assert s["confusion_matrix"][0] == [1, 1, 0, 0]


def test_auroc_is_one_for_separated_scores_and_half_for_ties():
    assert metrics.auroc([0.1, 0.2], [0.9, 1.5]) == 1.0
    assert metrics.auroc([0.5, 0.5], [0.5, 0.5]) == 0.5
