"""Read DICOM files into grey :class:`ml.io.frame.Frame` objects.

The pipeline per frame follows the DICOM grayscale display chain (PS3.4 Annex N.2):
stored values -> Modality LUT (rescale slope/intercept or LUT) -> VOI LUT (LUT or the
first window centre/width) -> [0, 1] -> inverted for MONOCHROME1. Colour images (RGB,
YBR, palette) become ITU-R 601 luma. Compressed transfer syntaxes are decoded by the
pydicom plugins installed with it (pylibjpeg-libjpeg / -openjpeg / -rle, Pillow).

Everything in ``Frame.meta`` may identify a patient: this module never logs or prints
it, and it keeps pydicom's own warnings (which can quote element values) out of the
logs while a file is being read.
"""
from __future__ import annotations

import contextlib
import io
import logging
import threading
import warnings
from typing import Any, Iterator

import numpy as np

from ml.errors import ImageReadError

# MAX_INFLATED_BYTES and MAX_TOTAL_PIXELS are read here at call time and handed to the
# checks, so a caller (or a test) lowers them for DICOM by setting them on this module.
from ml.io.dicom_checks import (
    MAX_INFLATED_BYTES,
    MAX_TOTAL_PIXELS,
    check_codestreams,
    check_deflated_size,
    check_image_header,
    expected_native_bytes,
    transfer_syntax,
)
from ml.io.dicom_pixels import colour_frame, grey_frame
from ml.io.dicom_tags import (
    floats_tag,
    functional_item,
    header_error_types,
    int_tag,
    sop_class_name,
    study_meta,
    what_it_is,
)
from ml.io.frame import Frame

_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
# Loggers pydicom writes to; the first one gets element values (PHI) in its warnings.
_PYDICOM_LOGGERS = ("pydicom", "pydicom.pixels.utils", "pydicom.pixels.decoders.base")


# --------------------------------------------------------------------------- quiet reads
class _DropWhileReading(logging.Filter):
    """Drops pydicom records emitted by this thread while it is inside a read."""

    local = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(self.local, "depth", 0) == 0


_FILTER = _DropWhileReading()
_filter_lock = threading.Lock()
_filter_installed = False


@contextlib.contextmanager
def _quiet_pydicom() -> Iterator[list[warnings.WarningMessage]]:
    """Silence pydicom's warnings and log records for this thread; yield the warnings.

    pydicom warns with element values ("Invalid value for VR IS: '...'"), which can be
    PHI, and Celery forwards stderr to its logs. ``warnings.catch_warnings`` is
    process-wide: another thread's warnings may be hidden meanwhile (never shown twice).
    """
    global _filter_installed
    if not _filter_installed:
        with _filter_lock:
            if not _filter_installed:
                for name in _PYDICOM_LOGGERS:
                    logging.getLogger(name).addFilter(_FILTER)
                _filter_installed = True
    local = _DropWhileReading.local
    local.depth = getattr(local, "depth", 0) + 1
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield caught
    finally:
        local.depth -= 1


# --------------------------------------------------------------------------- parsing
@contextlib.contextmanager
def _damaged_header_is_refused() -> Iterator[None]:
    """Turn pydicom's errors while reading header elements into one clear ImageReadError."""
    try:
        yield
    except ImageReadError:
        raise
    except header_error_types() as exc:
        raise ImageReadError("DICOM header is damaged: some of its elements cannot be read") from exc


def _parse(data: bytes, *, stop_before_pixels: bool = False) -> tuple[Any, bool]:
    """Parse bytes with pydicom; return (dataset, hit_end_of_file_early)."""
    import pydicom

    check_deflated_size(data, max_inflated_bytes=MAX_INFLATED_BYTES)
    with _quiet_pydicom() as caught:
        try:
            ds = pydicom.dcmread(io.BytesIO(data), force=True, stop_before_pixels=stop_before_pixels)
        except header_error_types() as exc:
            raise ImageReadError("not a readable DICOM file (the header is damaged or truncated)") from exc
    early_eof = any("end of file" in str(w.message).lower() for w in caught)
    return ds, early_eof


def might_be_dicom(data: bytes) -> bool:
    """True when ``data`` looks like a DICOM data set without the 128-byte preamble.

    Such files start directly with an element of group 0002 (file meta) or 0008
    (identifying information), little- or big-endian, and pydicom can parse a header
    from them with at least one identifying or image element.
    """
    if len(data) < 8:
        return False
    if data[:2] not in (b"\x02\x00", b"\x08\x00", b"\x00\x02", b"\x00\x08"):
        return False
    try:
        ds, _ = _parse(data, stop_before_pixels=True)
    except ImageReadError:
        return False
    keys = ("SOPClassUID", "SOPInstanceUID", "Modality", "StudyInstanceUID", "Rows")
    with _quiet_pydicom():
        try:
            return any(k in ds for k in keys)
        except header_error_types():  # a half-parsed header is simply "not DICOM"
            return False


def _decoded(ds: Any, tsyntax: Any) -> Iterator[tuple[np.ndarray, dict[str, Any]]]:
    """Yield (array, decoder facts) per frame; decoder failures become ImageReadError."""
    from pydicom.pixels import get_decoder

    try:
        decoder = get_decoder(tsyntax)
    except NotImplementedError as exc:
        raise ImageReadError(
            f"cannot decode DICOM pixel data compressed as '{tsyntax.name}' ({tsyntax}): "
            "no decoder for it is installed"
        ) from exc
    if not decoder.is_available:
        missing = "; ".join(decoder.missing_dependencies) or "none installed"
        raise ImageReadError(
            f"cannot decode DICOM pixel data compressed as '{tsyntax.name}': no decoder for it is "
            f"installed ({missing})"
        )
    frames = decoder.iter_array(ds, raw=False)
    while True:
        try:
            with _quiet_pydicom():
                item = next(frames)
        except StopIteration:
            return
        except (ValueError, RuntimeError, TypeError, KeyError, IndexError, AttributeError,
                NotImplementedError, OSError, EOFError, MemoryError) as exc:
            kind = f"compressed as '{tsyntax.name}'" if tsyntax.is_compressed else "stored natively"
            raise ImageReadError(
                f"DICOM pixel data ({kind}) could not be decoded: it is damaged, truncated or "
                "does not match the image header"
            ) from exc
        yield item


def _inspect(ds: Any, early_eof: bool) -> dict[str, Any]:
    """Check the header before any decoding; return what decoding needs (no pixels yet)."""
    pixel_keyword = next((k for k in _PIXEL_KEYWORDS if k in ds), None)
    if pixel_keyword is None:
        # pydicom drops what it read when a file ends inside a sequence (e.g. compressed
        # pixel data), so an early end of file counts even with no image elements left.
        if early_eof or "Rows" in ds or "Image Storage" in (sop_class_name(ds) or ""):
            raise ImageReadError(f"truncated DICOM: the file ends before its pixel data{what_it_is(ds)}")
        if len(ds) == 0:
            raise ImageReadError("not a readable DICOM file (no DICOM elements found)")
        raise ImageReadError(f"DICOM file has no pixel data (a structured report?){what_it_is(ds)}")
    element = ds[pixel_keyword]
    tsyntax = transfer_syntax(ds, bool(getattr(element, "is_undefined_length", False)))
    rows, cols, frames = check_image_header(ds, max_total_pixels=MAX_TOTAL_PIXELS)
    found = len(element.value or b"")
    if not tsyntax.is_compressed:
        expected = expected_native_bytes(ds, rows, cols, frames)
        if found < expected:
            raise ImageReadError(f"truncated DICOM: expected {expected} bytes of pixel data, found {found}")
    elif found == 0:
        raise ImageReadError("truncated DICOM: the compressed pixel data is empty")
    else:
        check_codestreams(element, rows, cols)
    return {
        "tsyntax": tsyntax,
        "frames": frames,
        "photometric": str(ds.PhotometricInterpretation).strip().upper(),
        "bits_stored": int_tag(ds, "BitsStored") or int_tag(ds, "BitsAllocated") or 8,
        "meta": study_meta(ds, str(tsyntax)),
    }


def _to_frame(arr: np.ndarray, facts: dict[str, Any], ds: Any, index: int, info: dict[str, Any]) -> Frame:
    """One decoded frame (H, W) or (H, W, 3) -> Frame with display values and its meta."""
    photometric = info["photometric"]
    decoded_pi = facts.get("photometric_interpretation") or photometric
    decoded_pi = str(getattr(decoded_pi, "value", decoded_pi)).upper()  # an enum in pydicom 3
    meta = dict(info["meta"], frame_index=index, number_of_frames=info["frames"],
                size=[int(arr.shape[1]), int(arr.shape[0])], voi_lut_applied=False, colourfulness=0.0)
    if arr.ndim == 3 or photometric == "PALETTE COLOR":
        pixels, meta["colourfulness"] = colour_frame(arr, ds, decoded_pi, info["bits_stored"])
    else:
        pixels, meta["voi_lut_applied"] = grey_frame(arr, ds, index, photometric)
        # Robust top of the stored values: display scaling is per frame, so only this tells
        # an empty edge slice of a volume from a bright one (ml.study.slices compares them).
        meta["signal_level"] = float(np.percentile(arr[::2, ::2], 99))
    for key, sequence, keyword, n in (
        ("image_orientation_patient", "PlaneOrientationSequence", "ImageOrientationPatient", 6),
        ("pixel_spacing", "PixelMeasuresSequence", "PixelSpacing", 2),
    ):
        item = functional_item(ds, index, sequence)  # enhanced multi-frame: per frame
        values = floats_tag(item, keyword, n) if item is not None else None
        if values is not None:
            meta[key] = values
    return Frame(np.ascontiguousarray(pixels, dtype=np.float32), meta)


def read_dicom(data: bytes) -> list[Frame]:
    """Decode a DICOM file into one grey frame per image frame.

    Args:
        data: the whole file (with or without the 128-byte preamble).

    Returns:
        One :class:`ml.io.frame.Frame` per frame, pixels (H, W) float32 in [0, 1] after
        the modality and VOI LUTs (bright = high signal), ``meta`` with the study,
        series and patient facts (PHI: never log them), dates as ISO 'YYYY-MM-DD'.

    Raises:
        ImageReadError: not DICOM, no pixel data, truncated, too large, a damaged
            header, or a compressed transfer syntax with no decoder installed.
    """
    ds, early_eof = _parse(data)
    with _quiet_pydicom(), _damaged_header_is_refused():
        info = _inspect(ds, early_eof)
    out: list[Frame] = []
    for index, (arr, facts) in enumerate(_decoded(ds, info["tsyntax"])):
        with _quiet_pydicom(), _damaged_header_is_refused():
            out.append(_to_frame(arr, facts, ds, index, info))
    if not out:
        raise ImageReadError("DICOM file has no image frames")
    return out
