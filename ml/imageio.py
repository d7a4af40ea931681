"""Read JPEG, PNG and DICOM into one float32 grey array in [0, 1].

Every reader returns :class:`ml.imageio.Frame` objects; every failure raises
:class:`ml.errors.ImageReadError` with a message a person understands.
DICOM specifics (LUTs, MONOCHROME1, multi-frame, compressed syntaxes) live in
:mod:`ml.dicom`; this module dispatches and handles raster formats.
"""
from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Union

import numpy as np
from PIL import Image, UnidentifiedImageError

from ml.errors import ImageReadError

# Decompression-bomb guard: refuse images whose pixel count exceeds this before decoding.
MAX_PIXELS = 64_000_000
MAX_FRAMES = 2_000

Source = Union[str, os.PathLike, bytes, BinaryIO]


@dataclass
class Frame:
    """One 2-D grey image.

    Attributes:
        pixels: (H, W) float32 in [0, 1].
        meta: format-specific facts (e.g. DICOM UIDs, orientation); never pixel data.
    """

    pixels: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)


def _read_bytes(source: Source) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray)):
        return bytes(source), "<bytes>"
    if hasattr(source, "read"):
        data = source.read()
        return data, getattr(source, "name", "<stream>")
    path = os.fspath(source)
    try:
        with open(path, "rb") as fh:
            return fh.read(), os.path.basename(path)
    except OSError as exc:
        raise ImageReadError(f"cannot open file: {exc.strerror or exc}") from exc


def looks_like_dicom(data: bytes) -> bool:
    """True for Part-10 files (``DICM`` at offset 128)."""
    return len(data) >= 132 and data[128:132] == b"DICM"


def to_unit_range(arr: np.ndarray) -> np.ndarray:
    """Min-max scale any numeric array to float32 [0, 1]; a constant image becomes zeros."""
    arr = np.asarray(arr, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        arr = np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(arr.min()), float(arr.max())
    if hi <= lo:
        return np.zeros(arr.shape, dtype=np.float32)
    return ((arr - lo) / (hi - lo)).astype(np.float32)


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
        if w * h > MAX_PIXELS:
            raise ImageReadError(
                f"image is {w}x{h} pixels, above the {MAX_PIXELS:,}-pixel limit (a decompression bomb?)"
            )
        if w < 8 or h < 8:
            raise ImageReadError(f"image is only {w}x{h} pixels; too small to analyse")
        img.load()
    except ImageReadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageReadError(
            f"image is above the {MAX_PIXELS:,}-pixel limit (a decompression bomb?)"
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


def read_frames(source: Source) -> list[Frame]:
    """Read any supported file into its frames (a multi-frame DICOM gives several).

    Args:
        source: a path, raw bytes or a binary file object.

    Returns:
        A non-empty list of :class:`Frame`, each (H, W) float32 in [0, 1].

    Raises:
        ImageReadError: the input is not a readable JPEG, PNG or DICOM image.
    """
    data, _name = _read_bytes(source)
    if not data:
        raise ImageReadError("file is empty")
    if looks_like_dicom(data):
        from ml import dicom  # local import: pydicom is only needed for DICOM

        return dicom.read_dicom(data)
    try:
        return read_raster(data)
    except ImageReadError:
        # Some DICOM files lack the 128-byte preamble; let pydicom try before giving up.
        from ml import dicom

        if dicom.might_be_dicom(data):
            return dicom.read_dicom(data)
        raise


def read_image(source: Source) -> np.ndarray:
    """Read a single-frame image as (H, W) float32 in [0, 1].

    Raises:
        ImageReadError: unreadable input, or a multi-frame file (use :func:`read_frames`).
    """
    frames = read_frames(source)
    if len(frames) != 1:
        raise ImageReadError(f"file holds {len(frames)} frames; read it with read_frames()")
    return frames[0].pixels
