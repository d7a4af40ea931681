"""Where a heatmap points, in words: the region descriptor fed to the LLM prompt and report.

``describe_region(heat, image, orientation)`` returns a JSON-serialisable dict::

    {"peak": {"x": "left", "y": "anterior", "frame": "anatomical", "row": 120, "col": 88,
              "in_brain": true, "text": "patient's left, anterior"},
     "midline": false, "sellar": false, "depth": "deep",
     "hot_area_fraction": 0.07, "hot_spots": 1, "frame": "anatomical"}

Frames. With a DICOM ImageOrientationPatient (IOP: the patient-space directions, LPS,
of increasing column and of increasing row) the peak is described along the patient axes
lying in the image plane: ``x`` left/right, ``y`` anterior/posterior, ``z``
superior/inferior (each may also be "central"). Without it, the description is in image
terms and says so (``frame: "image"``): ``x`` left/centre/right of the image, ``y``
upper/middle/lower.

Positions are measured from the centre of the head's foreground mask, in units of its
half-extent, so they do not depend on how the head sits in the picture.

Heuristics, to be read as approximate:
* midline: the peak is within 15% of the head's half-width of the left-right centre.
  In image terms this assumes the horizontal image axis is left-right (axial and
  coronal slices); for a sagittal slice with IOP it is None (cannot be told in-plane).
* sellar: the peak is deep, near the midline and near the centre, slightly inferior
  (where the pituitary fossa lies on axial, coronal and sagittal slices).
* depth: "peripheral" when the peak is closer to the head's edge than 35% of the
  deepest point's distance, else "deep".
* hot area: pixels at >= 50% of the peak, inside the head, as a fraction of the head.
* hot spots: separate connected hot regions of at least 0.5% of the head's area.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from ml.model.preprocess import head_mask  # noqa: F401  (the analyzer imports it from here)

HOT_LEVEL = 0.5
CENTRAL_BAND = 0.2      # |offset| below this (in half-extents) is "central"
MIDLINE_BAND = 0.15
PERIPHERAL_DEPTH = 0.35
MIN_SPOT_FRACTION = 0.005
WORK_SIDE = 256        # descriptors are computed at most at this resolution

# LPS axes: index, (label for +, label for -).
_AXES = {"x": (0, ("left", "right")), "y": (1, ("posterior", "anterior")),
         "z": (2, ("superior", "inferior"))}


def _orientation_vectors(orientation: Sequence[float] | None):
    if orientation is None:
        return None
    v = np.asarray(orientation, np.float64).ravel()
    if v.size != 6 or not np.all(np.isfinite(v)):
        return None
    r, c = v[:3], v[3:]
    if np.linalg.norm(r) < 1e-6 or np.linalg.norm(c) < 1e-6:
        return None
    return r / np.linalg.norm(r), c / np.linalg.norm(c)


def _word(value: float, plus: str, minus: str, band: float = CENTRAL_BAND) -> str:
    if abs(value) < band:
        return "central"
    return plus if value > 0 else minus


def describe_region(heat: np.ndarray, image: np.ndarray,
                    orientation: Sequence[float] | None = None,
                    mask: np.ndarray | None = None) -> dict:
    """Describe where a heatmap's evidence lies.

    Args:
        heat: (H, W) map on the original image, in [0, 1].
        image: (H, W) original grey image in [0, 1] (for the head mask).
        orientation: DICOM ImageOrientationPatient (6 floats) or None.
        mask: a precomputed head mask (H, W) bool, or None to compute it.

    Returns:
        The descriptor dict described in the module docstring (plain Python types).

    Raises:
        ValueError: heat and image shapes differ, or they are not 2-D.
    """
    heat = np.nan_to_num(np.asarray(heat, np.float32))
    image = np.asarray(image, np.float32)
    if heat.ndim != 2 or heat.shape != image.shape:
        raise ValueError(f"heat {heat.shape} and image {image.shape} must be the same (H, W)")
    full_shape = heat.shape
    row_full, col_full = np.unravel_index(int(np.argmax(heat)), full_shape) if heat.size else (0, 0)
    scale = min(1.0, WORK_SIDE / max(full_shape)) if heat.size else 1.0
    if scale < 1.0:
        # Shapes and areas need no more than WORK_SIDE pixels; the peak keeps full precision.
        size = (max(1, round(full_shape[1] * scale)), max(1, round(full_shape[0] * scale)))
        heat = cv2.resize(heat, size, interpolation=cv2.INTER_AREA)
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        if mask is not None:
            mask = cv2.resize(np.asarray(mask, np.uint8), size, interpolation=cv2.INTER_NEAREST)
    brain = head_mask(image) if mask is None else np.asarray(mask, bool)
    vecs = _orientation_vectors(orientation)
    frame = "anatomical" if vecs is not None else "image"
    peak_value = float(heat.max()) if heat.size else 0.0
    if peak_value <= 0.0:
        return {"peak": None, "midline": False, "sellar": False, "depth": None,
                "hot_area_fraction": 0.0, "hot_spots": 0, "frame": frame}

    row = min(int(row_full * scale), heat.shape[0] - 1)
    col = min(int(col_full * scale), heat.shape[1] - 1)
    ys, xs = np.nonzero(brain)
    cy, cx = (ys.min() + ys.max()) / 2.0, (xs.min() + xs.max()) / 2.0
    half_h, half_w = max((ys.max() - ys.min()) / 2.0, 1.0), max((xs.max() - xs.min()) / 2.0, 1.0)
    u, v = (col - cx) / half_w, (row - cy) / half_h          # image offsets, in half-extents

    # Depth: distance to the head's edge relative to the deepest point's.
    dist = cv2.distanceTransform(np.pad(brain.astype(np.uint8), 1), cv2.DIST_L2, 3)[1:-1, 1:-1]
    depth_ratio = float(dist[row, col] / max(float(dist.max()), 1e-6))
    depth = "peripheral" if depth_ratio < PERIPHERAL_DEPTH else "deep"

    peak: dict = {"frame": frame, "row": int(row_full), "col": int(col_full),
                  "in_brain": bool(brain[row, col])}
    if vecs is not None:
        r, c = vecs
        offset = u * r + v * c                       # patient-space direction of the offset (LPS)
        inplane = np.sqrt(r ** 2 + c ** 2)           # how much each patient axis lies in-plane
        words, coords = [], {}
        for key, (i, (plus, minus)) in _AXES.items():
            if inplane[i] > 0.5:
                coords[key] = float(offset[i] / inplane[i])
                peak[key] = _word(coords[key], plus, minus)
                if peak[key] != "central":
                    words.append(("patient's " + peak[key]) if key == "x" else peak[key])
        peak["text"] = ", ".join(words) or "central"
        midline = bool(abs(coords["x"]) < MIDLINE_BAND) if "x" in coords else None
        sellar = (depth == "deep" and abs(coords.get("x", 0.0)) < CENTRAL_BAND
                  and -0.45 < coords.get("z", -0.1) < 0.05 and -0.35 < coords.get("y", 0.0) < 0.2)
    else:
        peak["x"] = _word(u, "right", "left").replace("central", "centre")
        peak["y"] = _word(v, "lower", "upper").replace("central", "middle")
        peak["text"] = f"image {peak['x']}, {peak['y']} (image terms; orientation unknown)"
        midline = bool(abs(u) < MIDLINE_BAND)
        sellar = depth == "deep" and abs(u) < CENTRAL_BAND and -0.3 < v < 0.4

    hot = (heat >= HOT_LEVEL * peak_value) & brain
    area = max(int(brain.sum()), 1)
    n, _labels, stats, _ = cv2.connectedComponentsWithStats(hot.astype(np.uint8), connectivity=8)
    min_area = max(1, int(MIN_SPOT_FRACTION * area))
    spots = int(np.sum(stats[1:, cv2.CC_STAT_AREA] >= min_area)) if n > 1 else 0
    return {"peak": peak, "midline": midline, "sellar": bool(sellar), "depth": depth,
            "depth_ratio": round(depth_ratio, 3), "hot_area_fraction": round(float(hot.sum()) / area, 4),
            "hot_spots": spots, "frame": frame}
