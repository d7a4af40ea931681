"""Encoding arrays as PNG bytes for previews (8-bit grey)."""
from __future__ import annotations

import cv2
import numpy as np


def grey_png(pixels: np.ndarray) -> bytes:
    """(H, W) float in [0, 1] -> 8-bit grey PNG bytes (fast compression: these are previews)."""
    arr = np.clip(np.asarray(pixels, dtype=np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".png", arr, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise ValueError("could not encode PNG")
    return buf.tobytes()
