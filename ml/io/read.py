"""Read JPEG, PNG and DICOM files into grey frames: the one entry point for any image file.

Every reader returns :class:`ml.io.frame.Frame` objects; every failure raises
:class:`ml.errors.ImageReadError` with a message a person understands. This module
only tells the formats apart: raster formats are read by :mod:`ml.io.raster`, DICOM
(LUTs, MONOCHROME1, multi-frame, compressed syntaxes) by :mod:`ml.io.dicom`.
"""
from __future__ import annotations

import os
from typing import BinaryIO, Union

import numpy as np

from ml.errors import ImageReadError
from ml.io.frame import Frame
from ml.io.raster import read_raster

Source = Union[str, os.PathLike, bytes, BinaryIO]


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
        from ml.io import dicom  # local import: pydicom is only needed for DICOM

        return dicom.read_dicom(data)
    try:
        return read_raster(data)
    except ImageReadError:
        # Some DICOM files lack the 128-byte preamble; let pydicom try before giving up.
        from ml.io import dicom

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
