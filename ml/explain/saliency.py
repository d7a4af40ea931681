"""The seed's saliency picture, built from guided-backprop gradients.

Steps, each its own function so tests can check them one by one:

1. guided backpropagation (:mod:`ml.explain.guided_backprop`): d score / d pixels;
2. channel-wise maximum of the absolute gradient (the seed fed 3-channel images; our
   grey input has one channel, so this is the absolute value);
3. a circular brain mask: the disc inscribed in the head crop, which drops the crop's
   corners (skull edge, scanner text) where gradients are large and meaningless;
4. 11x11 Gaussian smoothing (sigma 2.0, OpenCV's default for that size);
5. a 75th-percentile threshold: values below the 75th percentile inside the mask become
   0 and the rest is rescaled to [0, 1];
6. the hot colormap and alpha blending, in :mod:`ml.explain.overlay`.

Everything here runs on the (S, S) model-input grid; the result is mapped onto the
original image like the CAMs (:func:`ml.explain.base_cam.to_original`).
"""
from __future__ import annotations

import cv2
import numpy as np

SMOOTHING_KERNEL = 11
THRESHOLD_PERCENTILE = 75.0
MASK_RADIUS_FRACTION = 0.95  # of half the side of the (square) head crop


def channel_max(grads: np.ndarray) -> np.ndarray:
    """(S, S, C) or (S, S) gradients -> (S, S) max over channels of |gradient|."""
    g = np.abs(np.asarray(grads, np.float32))
    return g.max(axis=-1) if g.ndim == 3 else g


def circular_mask(shape: tuple[int, int], radius_fraction: float = MASK_RADIUS_FRACTION) -> np.ndarray:
    """(H, W) bool disc centred in the image, radius = fraction of half the shorter side."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = radius_fraction * min(h, w) / 2.0
    return (yy - (h - 1) / 2.0) ** 2 + (xx - (w - 1) / 2.0) ** 2 <= r * r


def smooth(m: np.ndarray, kernel: int = SMOOTHING_KERNEL) -> np.ndarray:
    """Gaussian blur with a kernel x kernel window (sigma from OpenCV's rule for the size)."""
    return cv2.GaussianBlur(np.asarray(m, np.float32), (kernel, kernel), 0)


def threshold_percentile(m: np.ndarray, mask: np.ndarray | None = None,
                         percentile: float = THRESHOLD_PERCENTILE) -> np.ndarray:
    """Zero everything below the percentile (taken inside ``mask``), rescale the rest to [0, 1]."""
    m = np.asarray(m, np.float32)
    inside = m[mask] if mask is not None and mask.any() else m.ravel()
    if inside.size == 0:
        return np.zeros_like(m)
    t, top = float(np.percentile(inside, percentile)), float(inside.max())
    if top - t <= 1e-12:
        return np.zeros_like(m)
    out = np.clip((m - t) / (top - t), 0.0, 1.0)
    if mask is not None:
        out = np.where(mask, out, 0.0)
    return out.astype(np.float32)


def saliency_map(grads: np.ndarray, *, kernel: int = SMOOTHING_KERNEL,
                 percentile: float = THRESHOLD_PERCENTILE,
                 radius_fraction: float = MASK_RADIUS_FRACTION) -> np.ndarray:
    """Steps 2 to 5 on one image's guided-backprop gradients.

    Args:
        grads: (S, S, C) or (S, S) input gradients (finite).
        kernel: Gaussian window side (odd).
        percentile: threshold percentile inside the mask.
        radius_fraction: mask radius as a fraction of half the shorter side.

    Returns:
        (S, S) float32 in [0, 1]; 0 outside the mask and below the threshold.

    Raises:
        ValueError: grads is not 2-D or 3-D.
    """
    grads = np.asarray(grads, np.float32)
    if grads.ndim not in (2, 3):
        raise ValueError(f"saliency_map expects (S, S[, C]) gradients, received shape {grads.shape}")
    m = channel_max(np.nan_to_num(grads))
    mask = circular_mask(m.shape, radius_fraction)
    m = smooth(np.where(mask, m, 0.0), kernel)
    return threshold_percentile(m, mask, percentile)
