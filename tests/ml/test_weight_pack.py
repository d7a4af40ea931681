"""ml.model.weight_pack: per-channel integer kernels, read back into the same architecture."""
import numpy as np
import pytest

from ml.model import weight_pack as wp


def test_quantise_is_per_channel_and_within_half_a_step():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 3, 16, 8)).astype(np.float32) * np.arange(1, 9, dtype=np.float32)
    q, s = wp.quantise(w, bits=7)
    assert q.dtype == np.int8 and s.shape == (1, 1, 1, 8)
    assert np.abs(q).max() <= 63
    assert np.all(np.abs(w - q * s) <= s / 2 + 1e-7)
    np.testing.assert_allclose(np.abs(q).max(axis=(0, 1, 2)), 63)   # each channel uses its range


def test_a_depthwise_kernel_is_scaled_per_input_channel():
    w = np.ones((3, 3, 4, 1), np.float32) * np.array([1, 10, 100, 1000], np.float32)[:, None]
    q, s = wp.quantise(w)
    assert s.shape == (1, 1, 4, 1)
    np.testing.assert_allclose(q * s, w, rtol=1e-6)


def test_a_packed_model_loads_into_a_fresh_build_of_the_architecture(tmp_path):
    from ml.model.builders import build_cnn

    model = build_cnn(64)
    rng = np.random.default_rng(1)
    for v in model.weights:     # a fresh model's logits are ~0: give it weights that say something
        w = rng.normal(0.0, 0.2, v.shape) if "variance" not in v.path else rng.uniform(0.5, 1.5, v.shape)
        v.assign(w.astype(np.float32))
    x = rng.random((4, 64, 64, 1), dtype=np.float32)
    stats = wp.pack([(v.path, v.numpy()) for v in model.weights], tmp_path / "weights.npz", bits=8)
    assert stats["quantised"] > 0 and stats["max_relative_error"] < 0.01
    fresh = build_cnn(64)       # built second: Keras's unnamed-layer counters have moved on
    assert not np.allclose(fresh.predict(x, verbose=0), model.predict(x, verbose=0))
    wp.load_into(fresh, tmp_path / "weights.npz")
    want = model.predict(x, verbose=0)
    got = fresh.predict(x, verbose=0)
    assert np.linalg.norm(got - want) / np.linalg.norm(want) < 0.02    # 8-bit rounding only


def test_a_file_for_another_architecture_is_refused(tmp_path):
    from ml.model.builders import build_cnn

    wp.pack([(v.path, v.numpy()) for v in build_cnn(64).weights], tmp_path / "w.npz")
    with pytest.raises(ValueError, match="does not match|variables"):
        wp.load_into(build_cnn(64, widths=(16, 32, 64, 128, 256)), tmp_path / "w.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not a brainai"):
        wp.unpack(tmp_path / "other.npz")


def test_stable_path_drops_only_the_name_counter():
    assert wp.stable_path("conv2d_3/kernel") == "conv2d/kernel"
    assert wp.stable_path("batch_normalization_12/gamma") == "batch_normalization/gamma"
    assert wp.stable_path("block14_sepconv2/pointwise_kernel") == "block14_sepconv2/pointwise_kernel"
    assert wp.stable_path("block1_conv1_bn/gamma") == "block1_conv1_bn/gamma"


def test_the_command_packs_a_saved_model_keras_and_the_trainer_can_start_from_the_folder(tmp_path):
    import json

    from ml.model.builders import build_cnn
    from ml.training.train import _initial_model

    model = build_cnn(64)
    rng = np.random.default_rng(2)
    for v in model.weights:
        if "variance" not in v.path:
            v.assign(rng.normal(0.0, 0.2, v.shape).astype(np.float32))
    model.save(tmp_path / "model.keras")
    folder = tmp_path / "packed"
    folder.mkdir()
    assert wp.main([str(tmp_path / "model.keras"), "--bits", "8", "--out", str(folder / "weights.npz")]) == 0
    (folder / "metadata.json").write_text(json.dumps({"arch": "cnn", "input_size": 64}))
    x = rng.random((3, 64, 64, 1), dtype=np.float32)
    for start in (str(tmp_path / "model.keras"), str(folder)):
        got = _initial_model(start).predict(x, verbose=0)
        want = model.predict(x, verbose=0)
        assert np.linalg.norm(got - want) / np.linalg.norm(want) < 0.02
