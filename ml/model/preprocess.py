"""The one preprocessing function shared by training and inference.

``prepare`` crops to the head, pads to a square, resizes to the model input and
normalises intensity. It also returns the geometry needed to map a heatmap back onto
the original image with no shift (:func:`unprepare_map`).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

PREPROCESSING_VERSION = "head-crop-square-v1"
# Pixels above this fraction of the robust maximum count as head, not background.
_FOREGROUND_FRACTION = 0.08
_MARGIN = 0.04  # extra border around the head box, as a fraction of its side


@dataclass(frozen=True)
class Prepared:
    """A model-ready image and how it was cut from the original.

    Attributes:
        x: (size, size) float32 in [0, 1].
        box: (y0, x0, side) of the square crop in original pixel coordinates; it may
            reach outside the image, where the crop is zero-padded.
        original_shape: (H, W) of the original image.
    """

    x: np.ndarray
    box: tuple[int, int, int]
    original_shape: tuple[int, int]


def head_box(img: np.ndarray) -> tuple[int, int, int]:
    """Square box (y0, x0, side) around the head in an (H, W) image in [0, 1].

    Falls back to the whole image (padded square) when no clear foreground is found.
    """
    h, w = img.shape
    small = cv2.GaussianBlur(img, (5, 5), 0)
    hi = float(np.percentile(small, 99.5))
    fg = small > max(hi * _FOREGROUND_FRACTION, 1e-3)
    ys, xs = np.nonzero(fg)
    if ys.size < 0.02 * h * w:  # blank or nearly blank: keep everything
        y0, y1, x0, x1 = 0, h, 0, w
    else:
        # Ignore thin specks (text, markers) by trimming 0.5% of foreground on each side.
        y0, y1 = np.percentile(ys, [0.5, 99.5]).astype(int)
        x0, x1 = np.percentile(xs, [0.5, 99.5]).astype(int)
        y1, x1 = y1 + 1, x1 + 1
    side = max(y1 - y0, x1 - x0)
    side = int(round(side * (1 + 2 * _MARGIN)))
    side = max(side, 8)
    cy, cx = (y0 + y1) / 2.0, (x0 + x1) / 2.0
    return int(round(cy - side / 2.0)), int(round(cx - side / 2.0)), side


def head_mask(image: np.ndarray) -> np.ndarray:
    """(H, W) bool: the largest bright connected region of the image, holes filled."""
    img = np.asarray(image, np.float32)
    small = cv2.GaussianBlur(img, (5, 5), 0)
    hi = float(np.percentile(small, 99.5))
    fg = (small > max(hi * _FOREGROUND_FRACTION, 1e-3)).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    if n <= 1:
        return np.ones(img.shape, bool)  # blank image: the whole frame stands in for the head
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    mask = (labels == largest).astype(np.uint8)
    # Fill holes: flood the background from a padded border; what it cannot reach is inside.
    padded = np.pad(mask, 1)
    flood = padded.copy()
    cv2.floodFill(flood, None, (0, 0), 1)
    holes = (flood == 0)[1:-1, 1:-1]
    return (mask.astype(bool) | holes)


def _crop_padded(img: np.ndarray, box: tuple[int, int, int]) -> np.ndarray:
    y0, x0, side = box
    h, w = img.shape
    out = np.zeros((side, side), dtype=np.float32)
    sy0, sx0 = max(y0, 0), max(x0, 0)
    sy1, sx1 = min(y0 + side, h), min(x0 + side, w)
    if sy1 > sy0 and sx1 > sx0:
        out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = img[sy0:sy1, sx0:sx1]
    return out


def normalise(x: np.ndarray) -> np.ndarray:
    """Robust intensity stretch: 0.5th..99.5th percentile of the crop -> [0, 1]."""
    lo, hi = np.percentile(x, [0.5, 99.5])
    if hi - lo < 1e-6:
        return np.zeros_like(x, dtype=np.float32)
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def prepare(img: np.ndarray, size: int) -> Prepared:
    """Crop to the head, resize to (size, size) and normalise.

    Args:
        img: (H, W) float array in [0, 1] (what :mod:`ml.io.read` returns).
        size: the model's input side in pixels.

    Returns:
        A :class:`Prepared` holding x (size, size) float32 in [0, 1] and the crop box.

    Raises:
        ValueError: img is not a 2-D array.
    """
    img = np.asarray(img, dtype=np.float32)
    if img.ndim != 2:
        raise ValueError(f"prepare() expects a 2-D grey image, received shape {img.shape}")
    box = head_box(img)
    crop = _crop_padded(img, box)
    interp = cv2.INTER_AREA if crop.shape[0] > size else cv2.INTER_LINEAR
    x = cv2.resize(crop, (size, size), interpolation=interp)
    return Prepared(normalise(x), box, (int(img.shape[0]), int(img.shape[1])))


def unprepare_map(heat: np.ndarray, prepared: Prepared) -> np.ndarray:
    """Map a (h, w) map over the model input back onto the original (H, W) image.

    The map is resized to the crop's side, then the part of the crop inside the
    original image is pasted back; pixels outside the crop get 0.
    """
    y0, x0, side = prepared.box
    h, w = prepared.original_shape
    big = cv2.resize(np.asarray(heat, np.float32), (side, side), interpolation=cv2.INTER_LINEAR)
    out = np.zeros((h, w), dtype=np.float32)
    sy0, sx0 = max(y0, 0), max(x0, 0)
    sy1, sx1 = min(y0 + side, h), min(x0 + side, w)
    if sy1 > sy0 and sx1 > sx0:
        out[sy0:sy1, sx0:sx1] = big[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0]
    return out
