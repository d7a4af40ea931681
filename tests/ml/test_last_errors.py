"""The last-errors tools: views, cached per-view logits, the paired test, the cross-validated mix."""
import numpy as np
import pytest

from ml.data import dataset as mldata
from ml.evaluation.ensemble import cross_validated_mix, stratified_folds
from ml.evaluation.metrics import mcnemar_exact
from ml.evaluation.view_logits import apply_view, view_logits
from ml.io.read import read_frames
from ml.model import registry
from ml.model.predict import logits_and_features_model, predict_logits_features
from ml.model.preprocess import prepare


def test_mcnemar_counts_fixed_and_broken_and_gives_the_exact_p():
    base = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 0], bool)
    new = np.array([1, 1, 1, 1, 1, 1, 1, 1, 1, 0], bool)
    r = mcnemar_exact(base, new)
    assert (r["fixed"], r["broken"]) == (6, 0)
    assert r["p"] == pytest.approx(2 / 64)              # 2 * 0.5**6
    one_each = mcnemar_exact(np.array([1, 0], bool), np.array([0, 1], bool))
    assert (one_each["fixed"], one_each["broken"], one_each["p"]) == (1, 1, 1.0)
    assert mcnemar_exact(base, base)["p"] == 1.0


def test_the_identity_view_changes_nothing_and_hflip_mirrors():
    x = np.random.default_rng(0).random((40, 40)).astype(np.float32)
    np.testing.assert_array_equal(apply_view(x, "identity"), x)
    np.testing.assert_array_equal(apply_view(x, "hflip"), x[:, ::-1])


def test_a_shift_moves_a_dot_by_four_percent_of_the_side_and_a_rotation_keeps_the_centre():
    x = np.zeros((101, 101), np.float32)
    x[50, 30] = 1.0
    y, xx = np.unravel_index(np.argmax(apply_view(x, "shift+4%")), x.shape)
    assert (y, xx) == (54, 34)
    centre = np.zeros((101, 101), np.float32)
    centre[50, 50] = 1.0
    assert np.argmax(apply_view(centre, "rot+6")) == 50 * 101 + 50
    with pytest.raises(KeyError, match="unknown view"):
        apply_view(x, "shear")


def test_folds_spread_every_class_evenly():
    y = np.repeat(np.arange(4), [10, 11, 12, 13])
    fold = stratified_folds(y, 5)
    for c in range(4):
        counts = np.bincount(fold[y == c], minlength=5)
        assert counts.max() - counts.min() <= 1


def test_the_cross_validated_weight_follows_the_better_model():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 200)
    good = np.full((200, 4), 0.02)
    good[np.arange(200), y] = 0.94
    noise = rng.dirichlet(np.ones(4), 200)
    mixed, weights = cross_validated_mix(y, good, noise, k=5)
    assert min(weights) >= 0.8
    assert (mixed.argmax(1) == y).all()


def test_cached_view_logits_of_the_real_cnn_average_to_its_flip_tta(tmp_path):
    info = registry.get("cnn")
    items = mldata.subsample(mldata.scan(mldata.default_data_dir()), 6, 3)
    first = view_logits(info, items, ["identity", "hflip"], tmp_path, progress=False)
    assert len(list(tmp_path.glob("cnn-*.npz"))) == 2
    again = view_logits(info, items, ["identity", "hflip"], tmp_path, progress=False)
    np.testing.assert_array_equal(again["hflip"]["logits"], first["hflip"]["logits"])
    x = np.stack([prepare(read_frames(it.path)[0].pixels, 160).x for it in items])[..., None]
    dual = logits_and_features_model(registry.load_keras(info), info.metadata["feature_layer"])
    tta, _ = predict_logits_features(dual, x, tta=True)
    mean = 0.5 * (first["identity"]["logits"] + first["hflip"]["logits"])
    np.testing.assert_allclose(mean, tta, atol=1e-4)
