"""The seed's saliency pipeline, step by step, and the guided-backprop rule under it."""
from __future__ import annotations

import numpy as np
import pytest

from ml.explain.saliency import (channel_max, circular_mask, saliency_map, smooth,
                                 threshold_percentile)


def test_channel_max_takes_the_largest_absolute_gradient_per_pixel():
    g = np.zeros((4, 4, 3), np.float32)
    g[0, 0] = [0.1, -0.7, 0.3]
    out = channel_max(g)
    assert out.shape == (4, 4) and out[0, 0] == pytest.approx(0.7) and out[1, 1] == 0.0
    assert channel_max(-np.ones((2, 2), np.float32)).tolist() == [[1.0, 1.0], [1.0, 1.0]]


def test_the_circular_mask_keeps_the_centre_and_drops_the_corners():
    m = circular_mask((64, 64))
    assert m[32, 32] and m[32, 2] and not m[0, 0] and not m[63, 63]
    assert 0.65 < m.mean() < 0.75            # about pi/4 of the square at radius 0.95


def test_smoothing_uses_an_11_by_11_window():
    impulse = np.zeros((31, 31), np.float32)
    impulse[15, 15] = 1.0
    out = smooth(impulse)
    rows, cols = np.nonzero(out > 0)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (10, 20, 10, 20)
    assert out.sum() == pytest.approx(1.0, abs=1e-5)


def test_the_threshold_keeps_the_top_quarter_rescaled_to_unit_range():
    m = np.arange(100, dtype=np.float32).reshape(10, 10)
    out = threshold_percentile(m)
    assert (out > 0).sum() == 25 and out.max() == 1.0 and out.min() == 0.0


def test_the_saliency_map_is_unit_range_zero_outside_the_mask_and_finite():
    rng = np.random.default_rng(0)
    g = rng.normal(size=(64, 64, 1)).astype(np.float32)
    g[30:34, 30:34] = 50.0
    s = saliency_map(g)
    assert s.shape == (64, 64) and np.isfinite(s).all()
    assert s.max() == pytest.approx(1.0) and s.min() == 0.0
    assert s[0, 0] == 0.0 and np.unravel_index(np.argmax(s), s.shape) in {(31, 31), (31, 32), (32, 31), (32, 32)}
    assert (s > 0).mean() <= 0.25 * circular_mask((64, 64)).mean() + 1e-3


def test_the_saliency_map_refuses_a_batch():
    with pytest.raises(ValueError, match="received shape"):
        saliency_map(np.zeros((2, 8, 8, 1), np.float32))


def test_guided_relu_passes_only_positive_gradient_where_the_input_was_positive():
    import tensorflow as tf

    from ml.explain.guided_backprop import guided_relu

    x = tf.constant([-1.0, 2.0, 3.0])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = guided_relu(x)
        loss = tf.reduce_sum(y * tf.constant([5.0, 7.0, -4.0]))
    assert y.numpy().tolist() == [0.0, 2.0, 3.0]
    assert tape.gradient(loss, x).numpy().tolist() == [0.0, 7.0, 0.0]


def test_the_guided_twin_shares_the_weights_and_computes_the_same_forward_pass():
    import keras

    from ml.explain.guided_backprop import guided_clone
    from ml.model.builders import build_cnn

    keras.utils.set_random_seed(1)
    model = build_cnn(64, widths=(8, 8, 16, 16, 32))
    twin, swapped = guided_clone(model, record=("features",), upstream_of="block4_sepconv2_act")
    assert swapped == 9                                   # every ReLU before the target layer
    x = np.random.default_rng(0).random((2, 64, 64, 1)).astype(np.float32)
    logits, feats = twin(x, training=False)
    np.testing.assert_array_equal(np.asarray(logits), np.asarray(model(x, training=False)))
    assert feats.shape == (2, 32)
    assert {id(w) for w in twin.weights} == {id(w) for w in model.weights}
