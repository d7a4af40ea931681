"""ml.training.distill (knowledge distillation) and ml.train --teacher / --tta."""
import json

import numpy as np
import pytest

from ml.training import distill
from ml.training.train import main as train_main
from tests.ml.folders import write_class_folder


def _np(t):
    return np.asarray(t, np.float64)


def test_targets_carry_the_one_hot_label_then_the_teachers_logits():
    t = distill.targets(np.array([2, 0]), np.array([[1.0, 2, 3, 4], [5, 6, 7, 8]]), 4)
    assert t.shape == (2, 8) and t.dtype == np.float32
    assert t[0, :4].tolist() == [0, 0, 1, 0] and t[1, 4:].tolist() == [5, 6, 7, 8]


def test_without_the_teacher_the_loss_is_the_smoothed_cross_entropy():
    import keras

    rng = np.random.default_rng(0)
    y, teacher, student = rng.integers(0, 4, 6), rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    got = _np(distill.kd_loss(4, 0.0, 3.0, 0.05)(distill.targets(y, teacher, 4), student.astype(np.float32)))
    ce = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.05, reduction=None)
    want = _np(ce(np.eye(4, dtype=np.float32)[y], student.astype(np.float32)))
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_the_teacher_term_is_tau_squared_kl_and_vanishes_when_the_student_agrees():
    rng = np.random.default_rng(1)
    y, teacher = rng.integers(0, 4, 5), rng.normal(size=(5, 4)).astype(np.float32)
    loss = distill.kd_loss(4, 1.0, 2.0, 0.0)
    agree = _np(loss(distill.targets(y, teacher, 4), teacher))
    np.testing.assert_allclose(agree, 0.0, atol=1e-5)
    student = rng.normal(size=(5, 4)).astype(np.float32)
    pt = np.exp(teacher / 2) / np.exp(teacher / 2).sum(1, keepdims=True)
    ps = np.exp(student / 2) / np.exp(student / 2).sum(1, keepdims=True)
    want = 4.0 * (pt * (np.log(pt) - np.log(ps))).sum(1)
    np.testing.assert_allclose(_np(loss(distill.targets(y, teacher, 4), student)), want, rtol=1e-4)


def test_the_accuracy_reads_the_label_half_of_the_targets():
    t = distill.targets(np.array([1, 3]), np.array([[9.0, 0, 0, 0], [9.0, 0, 0, 0]]), 4)
    pred = np.array([[0, 5.0, 0, 0], [5.0, 0, 0, 0]], np.float32)
    assert _np(distill.label_accuracy(4)(t, pred)).tolist() == [1.0, 0.0]


@pytest.mark.parametrize("alpha,tau", [(-0.1, 3.0), (1.5, 3.0), (0.5, 0.0)])
def test_bad_settings_are_refused(alpha, tau):
    with pytest.raises(ValueError, match="received"):
        distill.kd_loss(4, alpha, tau, 0.0)


def test_train_distils_from_a_shipped_model_and_records_the_tta_it_calibrated_for(tmp_path):
    real, out, cache = tmp_path / "real", tmp_path / "out", tmp_path / "c"
    write_class_folder(real, 10, seed=0)
    rc = train_main(["--data", str(real), "--out", str(out), "--epochs", "1", "--input-size", "64",
                     "--batch-size", "8", "--val-fraction", "0.25", "--cache-dir", str(cache),
                     "--teacher", "cnn", "--kd-alpha", "0.7", "--kd-temperature", "2", "--tta", "none"])
    assert rc == 0
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["tta"] == "none" and "accuracy_with_hflip_tta" in meta["validation"]
    assert meta["training"]["args"]["teacher"] == "cnn" and meta["training"]["args"]["kd_alpha"] == 0.7
    cached = list(cache.glob("teacher-cnn-*.npy"))
    assert len(cached) == 1 and np.load(cached[0]).shape == (40, 4)
