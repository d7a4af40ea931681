"""The JPEG/PNG reader (any format Pillow decodes): bytes in, one grey :class:`Frame` out."""
from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from ml.errors import ImageReadError
from ml.io import frame as limits
from ml.io.frame import Frame, to_unit_range


def _raster_to_grey(img: Image.Image) -> np.ndarray:
    """PIL image of any mode -> (H, W) float32 [0, 1]."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        arr = np.asarray(img, dtype=np.uint16).astype(np.float32) / 65535.0
        return arr
    if mode == "I":
        arr = np.asarray(img, dtype=np.int64)
        top = 65535.0 if arr.max() > 255 else 255.0
        return np.clip(arr / top, 0, 1).astype(np.float32)
    if mode == "F":
        return to_unit_range(np.asarray(img, dtype=np.float32))
    if mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
        mode = img.mode
    if mode in ("RGBA", "LA", "PA"):
        # Composite on black: transparent background is "no signal", as in an MRI.
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        img = Image.alpha_composite(bg, rgba).convert("RGB")
        mode = "RGB"
    if mode == "1":
        img = img.convert("L")
    if img.mode != "L":
        img = img.convert("RGB")
        rgb = np.asarray(img, dtype=np.float32) / 255.0
        # ITU-R 601 luma, the same weights PIL's convert("L") uses.
        return (rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)).astype(np.float32)
    return np.asarray(img, dtype=np.float32) / 255.0


def colourfulness(source_rgb: np.ndarray) -> float:
    """Mean chroma of an (H, W, 3) array in [0, 1]; ~0 for grey images."""
    return float(np.mean(np.max(source_rgb, -1) - np.min(source_rgb, -1))) if source_rgb.size else 0.0


def read_raster(data: bytes) -> list[Frame]:
    """Decode JPEG/PNG (and other Pillow formats) bytes into one Frame."""
    try:
        with warnings.catch_warnings():
            # Pillow only warns between its own limit and twice it; refuse those too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
        w, h = img.size
        if w * h > limits.MAX_PIXELS:
            raise ImageReadError(
                f"image is {w}x{h} pixels, above the {limits.MAX_PIXELS:,}-pixel limit (a decompression bomb?)"
            )
        if w < 8 or h < 8:
            raise ImageReadError(f"image is only {w}x{h} pixels; too small to analyse")
        img.load()
    except ImageReadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageReadError(
            f"image is above the {limits.MAX_PIXELS:,}-pixel limit (a decompression bomb?)"
        ) from exc
    except UnidentifiedImageError as exc:
        raise ImageReadError("not a readable image (expected JPEG, PNG or DICOM)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"image file is damaged or truncated: {exc}") from exc
    meta: dict[str, Any] = {"format": img.format or "raster", "mode": img.mode, "size": [w, h]}
    if img.mode in ("RGB", "RGBA", "P", "CMYK", "YCbCr", "LAB", "HSV"):
        rgb = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
        meta["colourfulness"] = colourfulness(rgb)
    else:
        meta["colourfulness"] = 0.0
    return [Frame(_raster_to_grey(img), meta)]
