"""What every reader returns: :class:`Frame`, plus the size limits all readers enforce.

Readers look the limits up on this module at call time (``frame.MAX_PIXELS``), so one
assignment here changes them for JPEG, PNG and DICOM alike.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Decompression-bomb guard: refuse images whose pixel count exceeds this before decoding.
MAX_PIXELS = 64_000_000
MAX_FRAMES = 2_000


@dataclass
class Frame:
    """One 2-D grey image.

    Attributes:
        pixels: (H, W) float32 in [0, 1].
        meta: format-specific facts (e.g. DICOM UIDs, orientation); never pixel data.
    """

    pixels: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)


def to_unit_range(arr: np.ndarray) -> np.ndarray:
    """Min-max scale any numeric array to float32 [0, 1]; a constant image becomes zeros."""
    arr = np.asarray(arr, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        arr = np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(arr.min()), float(arr.max())
    if hi <= lo:
        return np.zeros(arr.shape, dtype=np.float32)
    return ((arr - lo) / (hi - lo)).astype(np.float32)
