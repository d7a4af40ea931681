"""ml.deletion_augment: the training-time removal is the faithfulness metric's removal."""
import numpy as np
import pytest
import tensorflow as tf

from ml.deletion_augment import head_mask, impute, random_deletion, random_removal_mask
from ml.explain import faithfulness as F
from tests.builders import phantom


def _batch(n=4, size=96):
    return np.stack([phantom(size, seed=i) / 255.0 for i in range(n)]).astype(np.float32)


def test_the_head_mask_is_the_metrics_head():
    x = _batch()
    ours = head_mask(tf.constant(x[..., None])).numpy()[..., 0]
    theirs = np.stack([F.head_foreground(xi) for xi in x])
    assert ours.shape == theirs.shape
    assert np.mean(ours == theirs) > 0.999


def test_imputation_matches_the_metric_within_float_rounding():
    x = _batch()
    rng = np.random.default_rng(1)
    removed = np.stack([F.confine_to_head(F.resize_map(rng.random((10, 10)), 96), xi) > 1.6 for xi in x])
    assert 0.05 < removed.mean() < 0.6
    ours = impute(tf.constant(x[..., None]), tf.constant(removed[..., None])).numpy()[..., 0]
    theirs = np.stack([F.impute(xi, ri) for xi, ri in zip(x, removed)])
    assert np.abs(ours - theirs).max() < 1e-4
    assert np.array_equal(ours[~removed], x[~removed])            # kept pixels untouched
    assert not np.allclose(ours[removed], x[removed])             # removed ones replaced


def test_the_mask_removes_the_asked_share_of_the_head_and_nothing_outside():
    x = _batch()
    fractions = np.array([0.0, 0.25, 0.6, 1.0], np.float32)
    mask = random_removal_mask(tf.constant(x[..., None]), tf.constant(fractions)).numpy()[..., 0]
    head = np.stack([F.head_foreground(xi) > 0 for xi in x])
    assert not (mask & ~head).any()
    for i, f in enumerate(fractions):
        assert abs(mask[i].sum() / head[i].sum() - f) < 0.01


def test_untouched_images_come_back_bit_for_bit_and_touched_ones_stay_in_range():
    x = tf.constant(_batch(8)[..., None])
    assert np.array_equal(random_deletion(x, rate=0.0).numpy(), x.numpy())
    tf.random.set_seed(3)
    y = random_deletion(x, rate=0.5).numpy()
    same = [np.array_equal(y[i], x.numpy()[i]) for i in range(8)]
    assert 0 < sum(same) < 8                                       # some touched, some not
    assert y.min() >= 0.0 and y.max() <= 1.0 and np.isfinite(y).all()


@pytest.mark.parametrize("rate, most", [(-0.1, 1.0), (1.5, 1.0), (0.5, 0.0), (0.5, 1.2)])
def test_bad_settings_are_refused(rate, most):
    with pytest.raises(ValueError, match="received"):
        random_deletion(tf.zeros((2, 32, 32, 1)), rate=rate, max_fraction=most)


def test_the_training_pipeline_applies_it_after_the_classic_augmentation():
    from ml.train import make_datasets

    x = (_batch(8, 64) * 255).astype(np.uint8)
    y = np.arange(8) % 4
    plain, _ = make_datasets(x, y, x, y, 8, False, 0)
    removed, _ = make_datasets(x, y, x, y, 8, False, 0, deletion=(1.0, 1.0))
    a, _ = next(iter(plain))
    b, _ = next(iter(removed))
    assert a.shape == b.shape == (8, 64, 64, 1)
    # Same shuffle seed, so the same images: every one with a nonzero share is changed.
    changed = [not np.allclose(a[i], b[i]) for i in range(8)]
    assert sum(changed) >= 6
