"""Read DICOM files into grey :class:`ml.imageio.Frame` objects.

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
import datetime as _dt
import io
import logging
import math
import struct
import threading
import warnings
import zlib
from typing import Any, Iterator

import numpy as np

from ml import imageio as _imageio
from ml.errors import ImageReadError
from ml.imageio import Frame, to_unit_range

# Memory guard across all frames of one file: 256 M pixels is 1 GiB as float32.
MAX_TOTAL_PIXELS = 256_000_000
# A Deflated Explicit VR data set may inflate to at most this many bytes (a zip bomb guard).
MAX_INFLATED_BYTES = 256 * 1024 * 1024
_DEFLATED_TS = b"1.2.840.10008.1.2.1.99"

_IMAGE_ATTRS = ("Rows", "Columns", "BitsAllocated", "SamplesPerPixel", "PhotometricInterpretation")
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
def _header_error_types() -> tuple[type[BaseException], ...]:
    """What pydicom raises on a damaged header (values of the wrong length, bad UIDs...)."""
    from pydicom.errors import BytesLengthException, InvalidDicomError

    return (InvalidDicomError, BytesLengthException, EOFError, OSError, ValueError, LookupError,
            TypeError, AttributeError, NotImplementedError, OverflowError, struct.error, MemoryError)


@contextlib.contextmanager
def _damaged_header_is_refused() -> Iterator[None]:
    """Turn pydicom's errors while reading header elements into one clear ImageReadError."""
    try:
        yield
    except ImageReadError:
        raise
    except _header_error_types() as exc:
        raise ImageReadError("DICOM header is damaged: some of its elements cannot be read") from exc


def _check_deflated_size(data: bytes) -> None:
    """Refuse a Deflated Explicit VR file that would inflate past MAX_INFLATED_BYTES.

    pydicom inflates the whole data set in one go while parsing, before any of our
    checks can see Rows or Columns, so measure it first with a bounded inflate.
    """
    pos = 132 if data[128:132] == b"DICM" else 0
    start = pos
    while pos + 8 <= len(data) and data[pos:pos + 2] == b"\x02\x00":  # file meta: explicit VR LE
        if data[pos + 4:pos + 6] in (b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"SQ", b"UC", b"UN", b"UR", b"UT"):
            pos += 12 + int.from_bytes(data[pos + 8:pos + 12], "little")
        else:
            pos += 8 + int.from_bytes(data[pos + 6:pos + 8], "little")
    if _DEFLATED_TS not in data[start:pos]:
        return
    inflater, pending, size = zlib.decompressobj(-zlib.MAX_WBITS), data[pos:], 0
    try:
        while pending and not inflater.eof:  # 1 MiB at a time: counting costs no memory
            size += len(inflater.decompress(pending, 1 << 20))
            pending = inflater.unconsumed_tail
            if size > MAX_INFLATED_BYTES:
                raise ImageReadError(
                    f"DICOM file inflates to more than {MAX_INFLATED_BYTES:,} bytes (a decompression bomb?)"
                )
    except zlib.error as exc:
        raise ImageReadError("DICOM file is damaged: its deflated data cannot be inflated") from exc


def _parse(data: bytes, *, stop_before_pixels: bool = False) -> tuple[Any, bool]:
    """Parse bytes with pydicom; return (dataset, hit_end_of_file_early)."""
    import pydicom

    _check_deflated_size(data)
    with _quiet_pydicom() as caught:
        try:
            ds = pydicom.dcmread(io.BytesIO(data), force=True, stop_before_pixels=stop_before_pixels)
        except _header_error_types() as exc:
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
        except _header_error_types():  # a half-parsed header is simply "not DICOM"
            return False


# --------------------------------------------------------------------------- header facts
def _int(ds: Any, keyword: str, default: int | None = None) -> int | None:
    try:
        value = ds.get(keyword)
        if value is None or value == "":
            return default
        return int(value)
    except (TypeError, ValueError):
        return default


def _text(ds: Any, keyword: str) -> str | None:
    try:
        value = ds.get(keyword)
    except _header_error_types():  # undecodable text is treated as absent
        return None
    if value is None:
        return None
    text = str(value).strip().strip("\x00").strip()
    return text or None


def _date(ds: Any, keyword: str) -> str | None:
    """DICOM DA ('YYYYMMDD', or ACR-NEMA 'YYYY.MM.DD') -> ISO 'YYYY-MM-DD'; else None."""
    text = _text(ds, keyword)
    if not text:
        return None
    digits = text.replace(".", "")
    if len(digits) != 8 or not digits.isdigit():
        return None
    try:
        return _dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:])).isoformat()
    except ValueError:
        return None


def _floats(ds: Any, keyword: str, n: int) -> list[float] | None:
    try:
        value = ds.get(keyword)
        if value is None:
            return None
        items = [value] if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__") else value
        values = [float(v) for v in items]
    except (TypeError, ValueError):
        return None
    if len(values) != n or not all(math.isfinite(v) for v in values):
        return None
    return values


def _functional_item(ds: Any, index: int, sequence: str) -> Any | None:
    """First item of a functional-group ``sequence`` for frame ``index`` (per-frame wins)."""
    for groups, i in (("PerFrameFunctionalGroupsSequence", index), ("SharedFunctionalGroupsSequence", 0)):
        try:
            item = ds.get(groups)[i]
            seq = item.get(sequence)
            if seq:
                return seq[0]
        except (TypeError, IndexError, AttributeError):
            continue
    return None


def _study_meta(ds: Any, tsyntax: str) -> dict[str, Any]:
    """Facts shared by every frame of the file. PHI: never log the result."""
    return {
        "format": "DICOM",
        "modality": _text(ds, "Modality"),
        "sop_class_uid": _text(ds, "SOPClassUID"),
        "study_instance_uid": _text(ds, "StudyInstanceUID"),
        "series_instance_uid": _text(ds, "SeriesInstanceUID"),
        "sop_instance_uid": _text(ds, "SOPInstanceUID"),
        "instance_number": _int(ds, "InstanceNumber"),
        "patient_id": _text(ds, "PatientID"),
        "patient_name": _text(ds, "PatientName"),
        "patient_birth_date": _date(ds, "PatientBirthDate"),
        "patient_sex": _text(ds, "PatientSex"),
        "study_date": _date(ds, "StudyDate"),
        "study_description": _text(ds, "StudyDescription"),
        "series_description": _text(ds, "SeriesDescription"),
        "accession_number": _text(ds, "AccessionNumber"),
        "image_orientation_patient": _floats(ds, "ImageOrientationPatient", 6),
        "pixel_spacing": _floats(ds, "PixelSpacing", 2),
        "photometric_interpretation": _text(ds, "PhotometricInterpretation"),
        "transfer_syntax_uid": tsyntax,
    }


def _sop_class_name(ds: Any) -> str | None:
    uid = ds.get("SOPClassUID")
    if not uid and getattr(ds, "file_meta", None) is not None:
        uid = ds.file_meta.get("MediaStorageSOPClassUID")
    return (getattr(uid, "name", "") or str(uid)) if uid else None


def _what_it_is(ds: Any) -> str:
    """"; SOP class 'Basic Text SR Storage', modality SR" or "" (no PHI in either)."""
    parts = []
    sop = _sop_class_name(ds)
    if sop:
        parts.append(f"SOP class '{sop}'")
    modality = _text(ds, "Modality")
    if modality:
        parts.append(f"modality {modality}")
    return "; " + ", ".join(parts) if parts else ""


# --------------------------------------------------------------------------- checks
def _transfer_syntax(ds: Any, encapsulated: bool) -> Any:
    """The transfer syntax UID, inferred from the encoding when the file meta lacks it."""
    from pydicom import uid as U

    tsyntax = ds.file_meta.get("TransferSyntaxUID") if getattr(ds, "file_meta", None) is not None else None
    if tsyntax:
        tsyntax = U.UID(str(tsyntax).strip())
        if not tsyntax.is_transfer_syntax:
            raise ImageReadError(
                f"DICOM file declares an unknown transfer syntax ({tsyntax}); its pixel data "
                "cannot be decoded"
            )
        return tsyntax
    if encapsulated:
        raise ImageReadError(
            "DICOM file has compressed pixel data but does not say which compression "
            "(no transfer syntax in the file meta); it cannot be decoded"
        )
    implicit, little = getattr(ds, "original_encoding", (None, None))
    if little is False:
        inferred = U.ExplicitVRBigEndian
    elif implicit is False:
        inferred = U.ExplicitVRLittleEndian
    else:
        inferred = U.ImplicitVRLittleEndian
    ds.file_meta.TransferSyntaxUID = inferred  # pydicom's decoder reads it from here
    return inferred


def _check_image_header(ds: Any) -> tuple[int, int, int]:
    """Validate the Image Pixel module; return (rows, columns, frames)."""
    missing = [k for k in _IMAGE_ATTRS if ds.get(k) in (None, "")]
    if missing:
        raise ImageReadError(
            "DICOM image header is incomplete: missing " + ", ".join(missing)
        )
    rows, cols = _int(ds, "Rows"), _int(ds, "Columns")
    bits, spp = _int(ds, "BitsAllocated"), _int(ds, "SamplesPerPixel")
    if not rows or not cols or rows < 1 or cols < 1:
        raise ImageReadError("DICOM image header is damaged: Rows and Columns must be positive")
    if bits not in (1, 8, 16, 32, 64) or spp not in (1, 3):
        raise ImageReadError(
            f"DICOM image has an unsupported pixel layout ({bits} bits allocated, {spp} samples per pixel)"
        )
    frames = 1
    if ds.get("NumberOfFrames") not in (None, ""):
        frames = _int(ds, "NumberOfFrames")
        if frames is None:
            raise ImageReadError("DICOM image header is damaged: Number of Frames is not a whole number")
        frames = max(frames, 1)  # 0 is seen in the wild and means one frame
    max_pixels, max_frames = _imageio.MAX_PIXELS, _imageio.MAX_FRAMES
    if rows * cols > max_pixels:
        raise ImageReadError(
            f"DICOM image is {cols}x{rows} pixels, above the {max_pixels:,}-pixel limit (a decompression bomb?)"
        )
    if frames > max_frames:
        raise ImageReadError(f"DICOM file holds {frames:,} frames, above the {max_frames:,}-frame limit")
    if rows * cols * frames > MAX_TOTAL_PIXELS:
        raise ImageReadError(
            f"DICOM file holds {frames:,} frames of {cols}x{rows} pixels, above the "
            f"{MAX_TOTAL_PIXELS:,}-pixel limit for one file"
        )
    return rows, cols, frames


def _expected_native_bytes(ds: Any, rows: int, cols: int, frames: int) -> int:
    """Bytes of native (uncompressed) pixel data the header promises."""
    spp = _int(ds, "SamplesPerPixel", 1) or 1
    bits = _int(ds, "BitsAllocated", 8) or 8
    if bits == 1:  # bit-packed across frame boundaries
        return math.ceil(rows * cols * spp * frames / 8)
    per_pixel = spp * bits // 8
    if str(ds.get("PhotometricInterpretation", "")).strip() == "YBR_FULL_422":
        per_pixel = 2 * bits // 8  # two chroma samples shared by two pixels
    return rows * cols * per_pixel * frames


def _codestream_size(fragment: bytes) -> tuple[int, int] | None:
    """(height, width) a JPEG, JPEG-LS or JPEG 2000 codestream declares, or None."""
    head = bytes(fragment[:65536])
    if head[:2] == b"\xff\xd8":  # JPEG / JPEG-LS: walk the segments up to a SOF
        offset = 2
        while offset + 9 <= len(head) and head[offset] == 0xFF:
            marker = head[offset + 1]
            if marker in _SOF_MARKERS:
                height = int.from_bytes(head[offset + 5:offset + 7], "big")
                width = int.from_bytes(head[offset + 7:offset + 9], "big")
                return height, width
            offset += 2 + int.from_bytes(head[offset + 2:offset + 4], "big")
        return None
    start = head.find(b"\xff\x4f\xff\x51")  # J2K SOC + SIZ, raw or inside a JP2 box
    if start < 0 or not (start == 0 or head[4:8] == b"jP  "):
        return None
    siz = head[start + 8:start + 24]
    if len(siz) < 16:
        return None
    xsiz, ysiz, xosiz, yosiz = (int.from_bytes(siz[i:i + 4], "big") for i in (0, 4, 8, 12))
    return ysiz - yosiz, xsiz - xosiz


# SOF0-SOF15 except DHT (C4), JPG (C8) and DAC (CC); SOF55 (F7) is JPEG-LS.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC} | {0xF7}


def _check_codestreams(element: Any, rows: int, cols: int) -> None:
    """Refuse compressed frames that declare more pixels than the header (a bomb)."""
    from pydicom.encaps import generate_fragments

    try:
        fragments = generate_fragments(element.value)
        for fragment in fragments:
            size = _codestream_size(fragment)
            if size is not None and size[0] * size[1] > rows * cols:
                raise ImageReadError(
                    f"DICOM compressed pixel data claims {size[1]}x{size[0]} pixels but the header "
                    f"says {cols}x{rows} (a decompression bomb?)"
                )
    except ImageReadError:
        raise
    except (ValueError, TypeError, EOFError) as exc:
        raise ImageReadError("truncated DICOM: the compressed pixel data is damaged or cut short") from exc


# --------------------------------------------------------------------------- pixels
def _frame_luts(ds: Any, index: int) -> Any:
    """Dataset holding the LUT attributes in force for frame ``index``.

    Enhanced (multi-frame) objects keep rescale and window per frame in functional
    groups; classic objects keep them at the top level, and then ``ds`` is returned.
    """
    if "PerFrameFunctionalGroupsSequence" not in ds and "SharedFunctionalGroupsSequence" not in ds:
        return ds
    from pydicom.dataset import Dataset

    view = Dataset()
    view.file_meta = ds.file_meta
    view.set_original_encoding(*ds.original_encoding, ds.original_character_set)
    for keyword in ("PhotometricInterpretation", "BitsStored", "BitsAllocated", "PixelRepresentation",
                    "RescaleSlope", "RescaleIntercept", "ModalityLUTSequence", "VOILUTSequence",
                    "WindowCenter", "WindowWidth", "VOILUTFunction"):
        if keyword in ds:
            setattr(view, keyword, ds[keyword].value)
    for sequence, keywords in (
        ("PixelValueTransformationSequence", ("RescaleSlope", "RescaleIntercept")),
        ("FrameVOILUTSequence", ("WindowCenter", "WindowWidth", "VOILUTFunction")),
    ):
        item = _functional_item(ds, index, sequence)
        for keyword in keywords:
            if item is not None and keyword in item:
                setattr(view, keyword, item[keyword].value)
    return view


def _window(values: np.ndarray, luts: Any) -> np.ndarray | None:
    """First window centre/width -> [0, 1] (PS3.3 C.11.2.1.2); None when unusable.

    Done here rather than with pydicom's ``apply_windowing``, whose output range comes
    from the rescale and flips the image when Rescale Slope is negative.
    """
    try:
        centre = float(_first(luts.get("WindowCenter")))
        width = float(_first(luts.get("WindowWidth")))
        function = str(luts.get("VOILUTFunction") or "LINEAR").strip().upper()
    except (TypeError, ValueError, IndexError):
        return None
    if not (math.isfinite(centre) and math.isfinite(width)):
        return None
    x = values.astype(np.float64)
    if function == "SIGMOID":
        if width <= 0:
            return None
        return 1.0 / (1.0 + np.exp(np.clip(-4.0 * (x - centre) / width, -700, 700)))
    if function == "LINEAR_EXACT":
        if width <= 0:
            return None
        return np.clip((x - centre) / width + 0.5, 0.0, 1.0)
    if width < 1:  # LINEAR (the default, also for unknown functions)
        return None
    if width == 1:
        return (x > centre - 0.5).astype(np.float64)
    return np.clip((x - (centre - 0.5)) / (width - 1) + 0.5, 0.0, 1.0)


def _first(value: Any) -> Any:
    """First value of a possibly multi-valued element (several windows: use the first)."""
    if value is None or isinstance(value, (str, bytes)) or not hasattr(value, "__getitem__"):
        return value
    return value[0]


def _grey_frame(arr: np.ndarray, ds: Any, index: int, photometric: str) -> tuple[np.ndarray, bool]:
    """(H, W) stored values -> (H, W) float32 [0, 1] display values; (pixels, voi_applied)."""
    from pydicom.pixels import apply_modality_lut, apply_voi

    luts = _frame_luts(ds, index)
    try:
        values = apply_modality_lut(arr, luts)
    except (AttributeError, KeyError, IndexError, TypeError, ValueError) as exc:
        raise ImageReadError("DICOM modality LUT (rescale) is damaged; the image cannot be shown") from exc
    modality_unit = to_unit_range(values)
    voi_applied = False
    if photometric in ("MONOCHROME1", "MONOCHROME2") and (
        luts.get("VOILUTSequence") or ("WindowCenter" in luts and "WindowWidth" in luts)
    ):
        try:
            if luts.get("VOILUTSequence"):  # a LUT wins over a window (PS3.3 C.11.2)
                lut_input = np.rint(values).astype(np.int64) if values.dtype.kind == "f" else values
                voi = apply_voi(lut_input, luts, index=0)
            else:
                voi = _window(values, luts)
        except (AttributeError, KeyError, IndexError, TypeError, ValueError, NotImplementedError):
            voi = None  # an unusable VOI: show the full range instead (voi_applied stays False)
        if voi is not None:
            windowed = to_unit_range(voi)
            # A window that maps every pixel to one value (a bad header) hides the image.
            if windowed.max() > windowed.min() or modality_unit.max() <= modality_unit.min():
                modality_unit, voi_applied = windowed, True
    if photometric == "MONOCHROME1":  # 0 is white: flip so bright means high signal
        modality_unit = (1.0 - modality_unit).astype(np.float32)
    return modality_unit, voi_applied


def _luma(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) -> (H, W) ITU-R 601 luma in the input's units (as PIL and imageio)."""
    return rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def _colour_frame(arr: np.ndarray, ds: Any, photometric: str, bits_stored: int) -> tuple[np.ndarray, float]:
    """(H, W, 3) colour or (H, W) palette indices -> ((H, W) float32 [0, 1], colourfulness)."""
    if photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        try:
            rgb = apply_color_lut(arr, ds)  # (H, W, 3) uint8 or uint16
        except (AttributeError, KeyError, IndexError, TypeError, ValueError) as exc:
            raise ImageReadError("DICOM palette colour table is damaged; the image cannot be shown") from exc
        top = float(np.iinfo(rgb.dtype).max) if np.issubdtype(rgb.dtype, np.integer) else float(rgb.max() or 1)
    else:
        rgb = arr
        top = float(2 ** bits_stored - 1)
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ImageReadError(f"DICOM colour image has an unexpected shape {tuple(rgb.shape)}")
    unit = np.clip(rgb.astype(np.float64) / top, 0.0, 1.0)
    if photometric.startswith("YBR") and photometric not in ("YBR_RCT", "YBR_ICT"):
        grey = unit[..., 0]  # decoder left YCbCr: Y is already 601 luma
        chroma = 0.0
    else:
        grey = _luma(unit)
        chroma = float(np.mean(unit.max(-1) - unit.min(-1)))
    return grey.astype(np.float32), chroma


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
        if early_eof or "Rows" in ds or "Image Storage" in (_sop_class_name(ds) or ""):
            raise ImageReadError(f"truncated DICOM: the file ends before its pixel data{_what_it_is(ds)}")
        if len(ds) == 0:
            raise ImageReadError("not a readable DICOM file (no DICOM elements found)")
        raise ImageReadError(f"DICOM file has no pixel data (a structured report?){_what_it_is(ds)}")
    element = ds[pixel_keyword]
    tsyntax = _transfer_syntax(ds, bool(getattr(element, "is_undefined_length", False)))
    rows, cols, frames = _check_image_header(ds)
    found = len(element.value or b"")
    if not tsyntax.is_compressed:
        expected = _expected_native_bytes(ds, rows, cols, frames)
        if found < expected:
            raise ImageReadError(f"truncated DICOM: expected {expected} bytes of pixel data, found {found}")
    elif found == 0:
        raise ImageReadError("truncated DICOM: the compressed pixel data is empty")
    else:
        _check_codestreams(element, rows, cols)
    return {
        "tsyntax": tsyntax,
        "frames": frames,
        "photometric": str(ds.PhotometricInterpretation).strip().upper(),
        "bits_stored": _int(ds, "BitsStored") or _int(ds, "BitsAllocated") or 8,
        "meta": _study_meta(ds, str(tsyntax)),
    }


def _to_frame(arr: np.ndarray, facts: dict[str, Any], ds: Any, index: int, info: dict[str, Any]) -> Frame:
    """One decoded frame (H, W) or (H, W, 3) -> Frame with display values and its meta."""
    photometric = info["photometric"]
    decoded_pi = facts.get("photometric_interpretation") or photometric
    decoded_pi = str(getattr(decoded_pi, "value", decoded_pi)).upper()  # an enum in pydicom 3
    meta = dict(info["meta"], frame_index=index, number_of_frames=info["frames"],
                size=[int(arr.shape[1]), int(arr.shape[0])], voi_lut_applied=False, colourfulness=0.0)
    if arr.ndim == 3 or photometric == "PALETTE COLOR":
        pixels, meta["colourfulness"] = _colour_frame(arr, ds, decoded_pi, info["bits_stored"])
    else:
        pixels, meta["voi_lut_applied"] = _grey_frame(arr, ds, index, photometric)
    for key, sequence, keyword, n in (
        ("image_orientation_patient", "PlaneOrientationSequence", "ImageOrientationPatient", 6),
        ("pixel_spacing", "PixelMeasuresSequence", "PixelSpacing", 2),
    ):
        item = _functional_item(ds, index, sequence)  # enhanced multi-frame: per frame
        values = _floats(item, keyword, n) if item is not None else None
        if values is not None:
            meta[key] = values
    return Frame(np.ascontiguousarray(pixels, dtype=np.float32), meta)


def read_dicom(data: bytes) -> list[Frame]:
    """Decode a DICOM file into one grey frame per image frame.

    Args:
        data: the whole file (with or without the 128-byte preamble).

    Returns:
        One :class:`ml.imageio.Frame` per frame, pixels (H, W) float32 in [0, 1] after
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
