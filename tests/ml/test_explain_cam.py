"""Grad-CAM, Grad-CAM++ and HiResCAM point at what the model uses, on the original image, unshifted.

The fixture model is tiny and trained for a few seconds on synthetic slices whose class
depends only on a known patch: class 1 has a bright disc inside the patch; both classes
have bright bars and dark squares outside it. The maps must peak inside the patch.
"""
from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
import pytest

SIZE = 64
PATCH = (8, 40, 16, 48)  # rows r0:r1, cols c0:c1 of the 96x96 original, after the margin
ORIGINAL = 96
MARGIN = 16              # the head sits in the middle of a black 96x96 frame
TARGET = "block4_sepconv2_act"


def _slice(rng: np.random.Generator, positive: bool) -> np.ndarray:
    """A 96x96 'slice': a 64x64 textured head on black, distractors outside the patch."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    head = (0.35 + 0.2 * cv2.GaussianBlur(rng.random((SIZE, SIZE)).astype(np.float32), (0, 0), 2))
    for _ in range(2):
        while True:
            cy, cx = rng.integers(6, SIZE - 6, 2)
            if not (PATCH[0] - 6 <= cy < PATCH[1] + 6 and PATCH[2] - 6 <= cx < PATCH[3] + 6):
                break
        if rng.random() < 0.5:
            head[cy - 2:cy + 2, cx - 6:cx + 6] = 1.0          # bright bar
        else:
            head[cy - 4:cy + 4, cx - 4:cx + 4] = 0.05         # dark square
    if positive:
        cy, cx = rng.integers(18, 31), rng.integers(26, 39)
        head[(yy - cy) ** 2 + (xx - cx) ** 2 <= 25] = 1.0
    img = np.zeros((ORIGINAL, ORIGINAL), np.float32)
    img[MARGIN:MARGIN + SIZE, MARGIN:MARGIN + SIZE] = head
    return img


def patch_in_original() -> tuple[int, int, int, int]:
    return PATCH[0] + MARGIN, PATCH[1] + MARGIN, PATCH[2] + MARGIN, PATCH[3] + MARGIN


def tiny_model(size: int = SIZE, widths=(8, 16, 32, 32)):
    """Plain ReLU CNN with the production layer names: an 8x8 target layer, GAP features."""
    import keras
    from keras import layers

    inp = keras.Input((size, size, 1), name="image")
    x = layers.Rescaling(2.0, offset=-1.0, name="centre")(inp)
    for i, w in enumerate(widths):
        x = layers.Conv2D(w, 3, strides=2 if i < 3 else 1, padding="same", name=f"conv{i}")(x)
        x = layers.ReLU(name=f"relu{i}")(x)
    x = layers.Identity(name=TARGET)(x)
    x = layers.GlobalAveragePooling2D(name="features")(x)
    return keras.Model(inp, layers.Dense(2, name="logits")(x), name="patch")


@lru_cache(maxsize=None)
def patch_model():
    """(model, metadata, positive test originals): trained once per test session (~4 s)."""
    import keras

    from ml.model.preprocess import prepare

    rng = np.random.default_rng(0)
    labels = np.arange(512) % 2
    x = np.stack([prepare(_slice(rng, bool(y)), SIZE).x for y in labels])[..., None]
    keras.utils.set_random_seed(0)
    model = tiny_model()
    model.compile(keras.optimizers.Adam(3e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, labels, epochs=8, batch_size=16, verbose=0)
    test_rng = np.random.default_rng(1)
    positives = tuple(_slice(test_rng, True) for _ in range(12))
    metadata = {"name": "patch", "arch": "cnn", "input_size": SIZE, "classes": ["absent", "present"],
                "target_layer": TARGET, "feature_layer": "features", "temperature": 1.0, "tta": "hflip"}
    return model, metadata, positives


def _inside_patch(heat: np.ndarray) -> bool:
    r0, r1, c0, c1 = patch_in_original()
    row, col = np.unravel_index(int(np.argmax(heat)), heat.shape)
    return r0 <= row < r1 and c0 <= col < c1


@pytest.mark.parametrize("method", ["GradCAM", "GradCAMPlusPlus", "HiResCAM"])
def test_the_map_peaks_inside_the_patch_the_decision_depends_on(method):
    import ml.explain

    model, meta, positives = patch_model()
    cam = getattr(ml.explain, method).from_metadata(model, meta)
    peaks_inside = [_inside_patch(cam.explain(img, target=1)) for img in positives]
    assert all(peaks_inside), peaks_inside


def test_maps_have_the_original_shape_are_in_unit_range_and_finite():
    from ml.explain.grad_cam import GradCAM

    model, meta, positives = patch_model()
    heat = GradCAM.from_metadata(model, meta).explain(positives[0][:90, :80])   # non-square
    assert heat.shape == (90, 80) and heat.dtype == np.float32
    assert np.isfinite(heat).all() and heat.min() >= 0.0 and heat.max() == pytest.approx(1.0)


def test_coarse_maps_are_min_max_normalised_and_report_the_class_explained():
    from ml.explain.grad_cam_plusplus import GradCAMPlusPlus
    from ml.model.preprocess import prepare

    model, meta, positives = patch_model()
    x = np.stack([prepare(img, SIZE).x for img in positives[:3]])
    maps, classes = GradCAMPlusPlus.from_metadata(model, meta)(x)
    assert maps.shape == (3, 8, 8) and list(classes) == [1, 1, 1]
    assert np.allclose(maps.max(axis=(1, 2)), 1.0) and np.allclose(maps.min(axis=(1, 2)), 0.0)


def test_with_flip_tta_the_map_of_a_mirrored_image_is_the_mirrored_map():
    from ml.explain.grad_cam import GradCAM
    from ml.model.preprocess import prepare

    model, meta, positives = patch_model()
    x = prepare(positives[0], SIZE).x
    cam = GradCAM.from_metadata(model, meta)
    maps, _ = cam(np.stack([x, x[:, ::-1]]), targets=[1, 1])
    assert np.allclose(maps[1], maps[0][:, ::-1], atol=1e-5)


def test_the_target_layer_is_found_by_name_and_a_wrong_name_says_what_exists():
    from ml.explain.grad_cam import GradCAM

    model, _meta, _ = patch_model()
    with pytest.raises(ValueError, match="no layer named 'block99'.*last layers are"):
        GradCAM(model, "block99")


def test_hirescam_is_grad_cam_when_the_head_averages_the_target_layer():
    # GAP then a linear layer: the gradient is the same at every position, so weighing
    # each position by its own gradient (HiResCAM) or by the mean (Grad-CAM) is one map.
    from ml.explain.grad_cam import GradCAM
    from ml.explain.hires_cam import HiResCAM
    from ml.model.preprocess import prepare

    model, meta, positives = patch_model()
    x = np.stack([prepare(img, SIZE).x for img in positives[:4]])
    grad_cam, _ = GradCAM.from_metadata(model, meta)(x)
    hires, _ = HiResCAM.from_metadata(model, meta)(x)
    assert np.abs(grad_cam - hires).max() < 1e-4


def test_hirescam_under_a_max_pooling_head_marks_only_the_positions_the_score_reads():
    # GlobalMaxPooling: each channel reaches the score only at its peak. Grad-CAM paints
    # the channels' whole activation; HiResCAM is zero wherever no channel peaks.
    import keras
    from keras import layers

    from ml.explain.grad_cam import GradCAM
    from ml.explain.hires_cam import HiResCAM

    keras.utils.set_random_seed(3)
    inp = keras.Input((32, 32, 1))
    x = layers.Conv2D(4, 3, strides=4, padding="same", name="conv")(inp)
    acts = layers.ReLU(name="target")(x)
    out = layers.Dense(2, name="logits")(layers.GlobalMaxPooling2D()(acts))
    model = keras.Model(inp, out)
    img = np.random.default_rng(0).random((1, 32, 32, 1)).astype(np.float32)
    a = keras.Model(inp, acts)(img).numpy()[0]                                  # (8, 8, 4)
    peaks = np.zeros((8, 8), bool)
    for k in range(a.shape[-1]):
        peaks[np.unravel_index(int(np.argmax(a[..., k])), (8, 8))] = True
    hires, _ = HiResCAM(model, "target", tta=False)(img, [0])
    grad_cam, _ = GradCAM(model, "target", tta=False)(img, [0])
    assert np.all(hires[0][~peaks] == 0.0)
    assert hires[0].max() == 1.0
    assert np.count_nonzero(grad_cam[0][~peaks]) > 0
