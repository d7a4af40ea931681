"""PNG overlays and heatmaps: deterministic bytes, the right size, a colour bar."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from ml.explain.overlay import (blend, colormap_lut, colour_bar, render_heatmap_png,
                                render_overlay_png)


def _inputs(h=300, w=260):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    image = (xx / w).astype(np.float32)
    heat = np.exp(-((yy - 100) ** 2 + (xx - 150) ** 2) / 800).astype(np.float32)
    return image, heat


def test_the_same_input_gives_the_same_bytes():
    image, heat = _inputs()
    assert render_overlay_png(image, heat) == render_overlay_png(image.copy(), heat.copy())
    assert render_heatmap_png(heat, cmap="hot") == render_heatmap_png(heat.copy(), cmap="hot")


def test_the_overlay_keeps_the_image_size_and_adds_a_colour_bar_on_the_right():
    image, heat = _inputs()
    png = Image.open(io.BytesIO(render_overlay_png(image, heat)))
    assert png.format == "PNG" and png.mode == "RGB" and png.size[1] == 300
    bar = colour_bar(300)
    assert png.size[0] == 260 + bar.shape[1]
    without = Image.open(io.BytesIO(render_overlay_png(image, heat, colorbar=False)))
    assert without.size == (260, 300)


def test_small_images_are_enlarged_and_huge_ones_shrunk_for_display():
    image, heat = _inputs(64, 64)
    assert Image.open(io.BytesIO(render_overlay_png(image, heat, colorbar=False))).size == (256, 256)
    big = np.zeros((2048, 1024), np.float32)
    assert Image.open(io.BytesIO(render_heatmap_png(big, colorbar=False))).size == (512, 1024)


def test_blending_mixes_grey_and_colour_by_alpha_and_can_leave_cold_pixels_untouched():
    image, heat = _inputs(200, 200)
    grey = np.round(np.repeat(image[..., None] * 255, 3, -1)).astype(np.uint8)
    np.testing.assert_array_equal(blend(image, heat, alpha=0.0), grey)
    sparse = np.where(heat > 0.5, heat, 0.0)
    out = blend(image, sparse, cmap="hot", alpha=0.6, transparent_below=1e-6)
    np.testing.assert_array_equal(out[sparse == 0], grey[sparse == 0])
    assert not np.array_equal(out[sparse > 0], grey[sparse > 0])


def test_the_colormaps_run_from_cold_to_hot():
    assert colormap_lut("hot")[0].tolist() == [0, 0, 0] and colormap_lut("hot")[-1].tolist() == [255, 255, 255]
    jet = colormap_lut("jet")
    assert jet[0].tolist() == [0, 0, 128] and jet[-1].tolist() == [128, 0, 0]


def test_mismatched_or_malformed_input_is_refused():
    image, heat = _inputs()
    with pytest.raises(ValueError, match="same shape"):
        render_overlay_png(image, heat[:10])
    with pytest.raises(ValueError, match="2-D"):
        render_heatmap_png(np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="unknown colormap"):
        render_heatmap_png(heat, cmap="rainbow")


def test_alpha_by_value_fades_weak_evidence_into_the_image():
    image, heat = _inputs(200, 200)
    out = blend(image, heat, cmap="hot", alpha=0.8, alpha_by_value=True)
    grey = np.round(np.repeat(image[..., None] * 255, 3, -1)).astype(np.uint8)
    far = heat < 1e-4
    assert np.abs(out[far].astype(int) - grey[far]).max() <= 1
