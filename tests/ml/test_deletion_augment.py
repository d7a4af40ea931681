"""ml.training.augment.deletion: the training-time removal is the faithfulness metric's removal."""
import numpy as np
import pytest
import tensorflow as tf

from ml.training.augment.deletion import head_mask, impute, random_deletion, removal_mask
from ml.explain import faithfulness as F
from tests.builders import phantom


def _batch(n=4, size=96):
    return np.stack([phantom(size, seed=i) / 255.0 for i in range(n)]).astype(np.float32)


def test_the_head_mask_is_the_metrics_head():
    x = _batch()
    ours = np.asarray(head_mask(tf.constant(x[..., None])))[..., 0].astype(np.float32)
    theirs = np.stack([F.head_foreground(xi) for xi in x])
    assert ours.shape == theirs.shape
    assert np.mean(ours == theirs) > 0.999


def test_imputation_matches_the_metric_within_float_rounding():
    x = _batch()
    rng = np.random.default_rng(1)
    removed = np.stack([F.confine_to_head(F.resize_map(rng.random((10, 10)), 96), xi) > 1.6 for xi in x])
    assert 0.05 < removed.mean() < 0.6
    ours = np.asarray(impute(tf.constant(x[..., None]), tf.constant(removed[..., None])))[..., 0]
    theirs = np.stack([F.impute(xi, ri) for xi, ri in zip(x, removed)])
    assert np.abs(ours - theirs).max() < 1e-4
    assert np.array_equal(ours[~removed], x[~removed])            # kept pixels untouched
    assert not np.allclose(ours[removed], x[removed])             # removed ones replaced


def test_the_mask_removes_the_asked_share_of_the_head_and_nothing_outside():
    x = _batch()
    fractions = np.array([0.0, 0.25, 0.6, 1.0], np.float32)
    noise = tf.random.uniform([4, 10, 10, 1], seed=1)
    mask = np.asarray(removal_mask(tf.constant(x[..., None]), tf.constant(fractions), noise))[..., 0]
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
    from ml.training.train import make_datasets

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


def test_at_a_side_4_does_not_divide_the_fill_stays_close_to_the_metrics():
    x = np.stack([phantom(299, seed=i) / 255.0 for i in range(2)]).astype(np.float32)
    rng = np.random.default_rng(2)
    removed = np.stack([F.confine_to_head(F.resize_map(rng.random((10, 10)), 299), xi) > 1.5 for xi in x])
    ours = np.asarray(impute(tf.constant(x[..., None]), tf.constant(removed[..., None])))[..., 0]
    theirs = np.stack([F.impute(xi, ri) for xi, ri in zip(x, removed)])
    assert np.abs(ours - theirs)[removed].mean() < 0.01


def test_the_layer_removes_only_in_training_and_survives_a_save(tmp_path):
    import keras

    from ml.training.augment.keras_layer import RandomDeletion

    x = _batch(8)[..., None]
    layer = RandomDeletion(rate=1.0, seed=4)
    assert np.array_equal(np.asarray(layer(x, training=False)), x)
    y = np.asarray(layer(x, training=True))
    assert y.shape == x.shape and y.min() >= 0.0 and y.max() <= 1.0
    assert sum(not np.allclose(y[i], x[i]) for i in range(8)) >= 6
    model = keras.Sequential([keras.Input((96, 96, 1)), RandomDeletion(rate=0.3, max_fraction=0.5, grid=8)])
    model.save(tmp_path / "m.keras")
    back = keras.models.load_model(tmp_path / "m.keras").layers[0]
    assert (back.rate, back.max_fraction, back.grid) == (0.3, 0.5, 8)
    with pytest.raises(ValueError, match="received"):
        RandomDeletion(rate=2.0)


JAX_CHILD = """
import json, sys
import numpy as np
try:
    import jax, keras
except ImportError:
    sys.exit(77)
from ml.training.augment.keras_layer import RandomDeletion
from ml.training.augment.deletion import impute
from ml.explain import faithfulness as F
from tests.builders import phantom
x = np.stack([phantom(96, seed=i) / 255.0 for i in range(4)]).astype(np.float32)
rng = np.random.default_rng(1)
removed = np.stack([F.confine_to_head(F.resize_map(rng.random((10, 10)), 96), xi) > 1.6 for xi in x])
ours = np.asarray(impute(x[..., None], removed[..., None]))[..., 0]
theirs = np.stack([F.impute(xi, ri) for xi, ri in zip(x, removed)])
y = np.asarray(RandomDeletion(rate=1.0, seed=3)(x[..., None], training=True))
# research.sweep's wrapper: a jitted fit with the removal layer in front of the model.
from ml.training.augment.keras_layer import Augment
from ml.model.builders import build_cnn
wrapper = keras.Sequential([keras.Input((96, 96, 1)), Augment(seed=1, dtype="float32"),
                            RandomDeletion(0.5, seed=2, dtype="float32"), build_cnn(96)])
wrapper.compile("adam", keras.losses.CategoricalCrossentropy(from_logits=True))
loss = wrapper.fit(x[..., None], keras.utils.to_categorical(np.arange(4) % 4, 4), batch_size=4, epochs=1,
                   verbose=0).history["loss"][0]
print(json.dumps({"backend": keras.backend.backend(), "tensorflow": "tensorflow" in sys.modules,
                  "fit_loss": float(loss),
                  "impute_max_diff": float(np.abs(ours - theirs).max()),
                  "changed": int(sum(not np.allclose(y[i], x[i, ..., None]) for i in range(4))),
                  "in_range": bool(y.min() >= 0 and y.max() <= 1)}))
"""


def test_the_layer_runs_under_jax_without_tensorflow_and_imputes_as_the_metric():
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="2")
    child = subprocess.run([sys.executable, "-c", JAX_CHILD], cwd=Path(__file__).resolve().parents[2],
                           env=env, capture_output=True, text=True, timeout=600)
    if child.returncode == 77:
        pytest.fail("jax is not importable: requirements-dev.txt installs it; the JAX backend must be tested")
    assert child.returncode == 0, child.stderr[-4000:]
    out = json.loads(child.stdout.strip().splitlines()[-1])
    assert out["backend"] == "jax" and not out["tensorflow"]
    assert out["impute_max_diff"] < 1e-4 and out["changed"] >= 3 and out["in_range"]
    assert np.isfinite(out["fit_loss"])
