"""Region descriptors: where the heat is, in anatomical terms when DICOM allows it."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ml.explain.region import describe_region

AXIAL = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]       # columns -> patient left, rows -> posterior
SAGITTAL = [0.0, 1.0, 0.0, 0.0, 0.0, -1.0]   # columns -> posterior, rows -> inferior


def _head(h=200, w=160):
    yy, xx = np.mgrid[0:h, 0:w]
    return (((yy - h / 2) / 90) ** 2 + ((xx - w / 2) / 70) ** 2 < 1).astype(np.float32) * 0.6


def _blob(shape, row, col, radius=10):
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    return np.exp(-((yy - row) ** 2 + (xx - col) ** 2) / (2 * radius ** 2)).astype(np.float32)


def test_without_orientation_the_peak_is_described_in_image_terms_and_says_so():
    img = _head()
    d = describe_region(_blob(img.shape, 60, 40), img)
    assert d["frame"] == "image" and d["peak"]["frame"] == "image"
    assert d["peak"]["x"] == "left" and d["peak"]["y"] == "upper"
    assert (d["peak"]["row"], d["peak"]["col"]) == (60, 40)
    assert "image terms" in d["peak"]["text"]
    json.dumps(d)


def test_with_an_axial_orientation_image_right_is_the_patients_left():
    img = _head()
    d = describe_region(_blob(img.shape, 60, 120), img, AXIAL)
    assert d["frame"] == "anatomical"
    assert d["peak"]["x"] == "left" and d["peak"]["y"] == "anterior" and "z" not in d["peak"]


def test_a_sagittal_slice_is_described_along_anterior_posterior_and_superior_inferior():
    img = _head()
    d = describe_region(_blob(img.shape, 150, 110), img, SAGITTAL)
    assert d["peak"]["y"] == "posterior" and d["peak"]["z"] == "inferior" and "x" not in d["peak"]
    assert d["midline"] is None                          # left-right is not in this plane


def test_a_central_deep_peak_is_midline_and_sellar_an_edge_peak_is_peripheral():
    img = _head()
    centre = describe_region(_blob(img.shape, 110, 80), img)
    assert centre["midline"] and centre["sellar"] and centre["depth"] == "deep"
    edge = describe_region(_blob(img.shape, 100, 14, radius=4), img)
    assert not edge["midline"] and not edge["sellar"] and edge["depth"] == "peripheral"


def test_hot_area_is_a_fraction_of_the_head_and_separate_spots_are_counted():
    img = _head()
    heat = np.zeros(img.shape, np.float32)
    heat[50:70, 50:70] = 1.0
    heat[130:150, 90:110] = 0.8
    heat[100, 80] = 0.4                                  # below half the peak: not hot
    d = describe_region(heat, img)
    assert d["hot_spots"] == 2
    assert d["hot_area_fraction"] == pytest.approx(800 / (img > 0).sum(), rel=0.05)


def test_an_empty_map_has_no_peak_and_no_hot_area():
    img = _head()
    d = describe_region(np.zeros(img.shape, np.float32), img)
    assert d["peak"] is None and d["hot_spots"] == 0 and d["hot_area_fraction"] == 0.0


def test_large_images_are_described_at_full_peak_precision():
    img = np.kron(_head(), np.ones((4, 4), np.float32))           # 800 x 640
    d = describe_region(_blob(img.shape, 243, 401, radius=30), img)
    assert (d["peak"]["row"], d["peak"]["col"]) == (243, 401)
    assert d["peak"]["x"] == "right"


def test_shapes_must_match():
    with pytest.raises(ValueError, match="same"):
        describe_region(np.zeros((10, 10)), np.zeros((10, 12)))
