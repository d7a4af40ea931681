"""The shipped GAN generator (research/gan/weights): size, provenance and sampling."""
from __future__ import annotations

import numpy as np

from research.gan.sample import DEFAULT_GENERATOR, latents, load_generator, sample_class
from ml.labels import CLASSES


def test_the_shipped_generator_is_small_trained_without_the_validation_split_and_samples():
    from pathlib import Path

    path = Path(DEFAULT_GENERATOR)
    assert path.stat().st_size < 20 * 1024 * 1024
    generator, meta = load_generator(path)
    assert meta["classes"] == list(CLASSES)
    assert meta["data"]["excluded_validation"] is True           # the ablation's validation split is unseen
    assert meta["data"]["split_seed"] == 1337 and meta["data"]["val_fraction"] == 0.1
    assert meta["training"]["steps_run"] > 1000
    a = sample_class(generator, CLASSES.index("glioma"), 3, seed=7)
    b = sample_class(generator, CLASSES.index("glioma"), 3, seed=7)
    size = meta["config"]["size"]
    assert a.shape == (3, size, size) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)                          # a seed reproduces the images
    assert a.std() > 10                                          # not a blank or constant image
    assert latents(7, 0, 2, 128).shape == (2, 128)
