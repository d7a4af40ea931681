"""Safety checks on a DICOM file before any pixel data is decoded.

Refuses what would exhaust memory (deflate bombs, huge or too many frames, codestreams
that declare more pixels than the header) or cannot be decoded (unknown transfer
syntax, an incomplete Image Pixel module), each with an ImageReadError a person
understands. Used by :mod:`ml.io.dicom`, which passes its own limits in at call time.
"""
from __future__ import annotations

import math
import zlib
from typing import Any

from ml.errors import ImageReadError
from ml.io import frame as limits
from ml.io.dicom_tags import int_tag

# Memory guard across all frames of one file: 256 M pixels is 1 GiB as float32.
MAX_TOTAL_PIXELS = 256_000_000
# A Deflated Explicit VR data set may inflate to at most this many bytes (a zip bomb guard).
MAX_INFLATED_BYTES = 256 * 1024 * 1024
_DEFLATED_TS = b"1.2.840.10008.1.2.1.99"

_IMAGE_ATTRS = ("Rows", "Columns", "BitsAllocated", "SamplesPerPixel", "PhotometricInterpretation")


def check_deflated_size(data: bytes, *, max_inflated_bytes: int = MAX_INFLATED_BYTES) -> None:
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
            if size > max_inflated_bytes:
                raise ImageReadError(
                    f"DICOM file inflates to more than {max_inflated_bytes:,} bytes (a decompression bomb?)"
                )
    except zlib.error as exc:
        raise ImageReadError("DICOM file is damaged: its deflated data cannot be inflated") from exc


def transfer_syntax(ds: Any, encapsulated: bool) -> Any:
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


def check_image_header(ds: Any, *, max_total_pixels: int = MAX_TOTAL_PIXELS) -> tuple[int, int, int]:
    """Validate the Image Pixel module; return (rows, columns, frames)."""
    missing = [k for k in _IMAGE_ATTRS if ds.get(k) in (None, "")]
    if missing:
        raise ImageReadError(
            "DICOM image header is incomplete: missing " + ", ".join(missing)
        )
    rows, cols = int_tag(ds, "Rows"), int_tag(ds, "Columns")
    bits, spp = int_tag(ds, "BitsAllocated"), int_tag(ds, "SamplesPerPixel")
    if not rows or not cols or rows < 1 or cols < 1:
        raise ImageReadError("DICOM image header is damaged: Rows and Columns must be positive")
    if bits not in (1, 8, 16, 32, 64) or spp not in (1, 3):
        raise ImageReadError(
            f"DICOM image has an unsupported pixel layout ({bits} bits allocated, {spp} samples per pixel)"
        )
    frames = 1
    if ds.get("NumberOfFrames") not in (None, ""):
        frames = int_tag(ds, "NumberOfFrames")
        if frames is None:
            raise ImageReadError("DICOM image header is damaged: Number of Frames is not a whole number")
        frames = max(frames, 1)  # 0 is seen in the wild and means one frame
    max_pixels, max_frames = limits.MAX_PIXELS, limits.MAX_FRAMES
    if rows * cols > max_pixels:
        raise ImageReadError(
            f"DICOM image is {cols}x{rows} pixels, above the {max_pixels:,}-pixel limit (a decompression bomb?)"
        )
    if frames > max_frames:
        raise ImageReadError(f"DICOM file holds {frames:,} frames, above the {max_frames:,}-frame limit")
    if rows * cols * frames > max_total_pixels:
        raise ImageReadError(
            f"DICOM file holds {frames:,} frames of {cols}x{rows} pixels, above the "
            f"{max_total_pixels:,}-pixel limit for one file"
        )
    return rows, cols, frames


def expected_native_bytes(ds: Any, rows: int, cols: int, frames: int) -> int:
    """Bytes of native (uncompressed) pixel data the header promises."""
    spp = int_tag(ds, "SamplesPerPixel", 1) or 1
    bits = int_tag(ds, "BitsAllocated", 8) or 8
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


def check_codestreams(element: Any, rows: int, cols: int) -> None:
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
