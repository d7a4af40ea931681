"""The bad-input corpus: hostile and awkward uploads, made on the fly (no binary fixtures).

Each :class:`Case` is one upload request: its files (name, bytes), its form fields, and
what the service must answer for each file: ``ACCEPTED`` (stored, then analysed), or a
piece of the reason it is rejected with. Used by tests/scans/test_bad_input.py (the API
and the filesystem), tests/e2e/test_bad_input_e2e.py (a real worker, a real browser) and
``python -m bench.bad_input`` (the memory each case costs).

The names carry one marker, :data:`PWNED`: every script in the corpus sets
``window.__pwned``, so a browser test can tell whether any of them ran. Zip-slip names
carry :data:`SLIP_MARK`, so a search can tell whether any of them landed on disk.
"""
from __future__ import annotations

import functools
import io
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tests import builders as b

ACCEPTED = "accepted"
PWNED = "window.__pwned"
SLIP_MARK = "brainai-slip-7f3c"

# HTML/JS payloads in the names a person types or a scanner writes, and Unicode beside them.
XSS_NAME = f"<script>{PWNED}=1</script>Zoë^王^Ωmega"
XSS_DESCRIPTION = f"\"'><img src=x onerror=\"{PWNED}=2\">МРТ головы ⚕"
XSS_FILE = f"<svg onload={PWNED}=3>脑部扫描 ünïcode.png"
# "=" separates a DICOM person name's component groups, so this one's script has none.
XSS_DICOM_NAME = "<script>Object.assign(window,{__pwned:4})</script>^Ærøskøbing José"
HOSTILE_DICOM_FILE = f"<img src=x onerror={PWNED}=9>.dcm"
XSS_DICOM_DESCRIPTION = f"</title><script>{PWNED}=5</script>头部 MRI"


@dataclass
class Case:
    """One upload request of the corpus and what each of its files must come to."""

    key: str
    files: list[tuple[str, bytes]]
    expect: dict[str, str]  # file name (ZIP members as "a.zip/member") -> ACCEPTED or part of the reason
    fields: dict = field(default_factory=dict)
    scans: int = 0  # scans stored when the accepted files are in (a multi-frame file is several)


# --- DICOM variants ---------------------------------------------------------------------------

def _uid(key: str, n: int = 1) -> str:
    """A stable, valid UID per case, so reruns and cases never collide."""
    return f"1.2.826.0.1.3680043.8.498.77.{sum(map(ord, key)) * 97 + len(key)}.{n}"


def _dataset(key: str, pixels: np.ndarray | None, **attrs):
    """An MR data set with invented identifiers around ``pixels`` ((rows, cols) or (frames, rows, cols))."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = _uid(key, 3)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, _uid(key, 3)
    ds.StudyInstanceUID, ds.SeriesInstanceUID = _uid(key, 1), _uid(key, 2)
    ds.Modality, ds.PatientID, ds.PatientName = "MR", f"BAD-{key}", "Corpus^Case"
    ds.StudyDescription, ds.SeriesDescription = "MRI brain", "T1 axial"
    ds.InstanceNumber = 1
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    if pixels is not None:
        ds.Rows, ds.Columns = pixels.shape[-2:]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        signed = pixels.dtype.kind == "i"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.PixelRepresentation = int(signed)
        if pixels.ndim == 3:
            ds.NumberOfFrames = pixels.shape[0]
        ds.PixelData = pixels.astype(np.int16 if signed else np.uint16).tobytes()
    for name, value in attrs.items():
        setattr(ds, name, value)
    return ds


def _save(ds, **kw) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, **{"enforce_file_format": True, **kw})
    return buf.getvalue()


def _head(seed: int = 0, size: int = 128) -> np.ndarray:
    return b.phantom(size, seed).astype(np.uint16) * 16


def _compressed(key: str, syntax) -> bytes:
    ds = _dataset(key, _head(5))
    ds.compress(syntax)  # pylibjpeg-rle / pylibjpeg-openjpeg encoders
    return _save(ds)


def _jpeg_ls(key: str) -> bytes:
    """pydicom's bundled JPEG-LS lossless MR (no JPEG-LS encoder is installed), re-identified."""
    import pydicom
    from pydicom.data import get_testdata_file

    path = get_testdata_file("MR_small_jpeg_ls_lossless.dcm", download=False)
    assert path, "pydicom's wheel ships MR_small_jpeg_ls_lossless.dcm"
    ds = pydicom.dcmread(path)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = _uid(key, 3)
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.PatientID = _uid(key, 1), _uid(key, 2), f"BAD-{key}"
    return _save(ds)


def _signed_rescaled(key: str) -> bytes:
    pixels = (_head(6).astype(np.int32) - 2048).astype(np.int16)
    return _save(_dataset(key, pixels, RescaleSlope=2, RescaleIntercept=-1024, RescaleType="US"))


def _sr(key: str) -> bytes:
    """A Basic Text SR: a valid DICOM file with no pixel data at all."""
    from pydicom.uid import BasicTextSRStorage

    ds = _dataset(key, None, Modality="SR")
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = BasicTextSRStorage
    ds.ValueType, ds.CompletionFlag, ds.VerificationFlag = "CONTAINER", "COMPLETE", "UNVERIFIED"
    return _save(ds)


def _no_meta(key: str) -> bytes:
    """A bare data set: no preamble, no "DICM", no file meta group (as old archives hold)."""
    ds = _dataset(key, _head(7))
    del ds.file_meta
    data = _save(ds, enforce_file_format=False, implicit_vr=True, little_endian=True)
    assert b"DICM" not in data[:200] and data[:4] == b"\x08\x00\x16\x00", "expected a bare data set"
    return data


def _dicom_pixel_bomb(key: str) -> bytes:
    """Headers promising 2000 frames of 65535 x 65535 pixels (17 TB decoded), a few bytes of data."""
    ds = _dataset(key, _head(8, 16))
    ds.Rows = ds.Columns = 65535
    ds.NumberOfFrames = 2000
    return _save(ds)


# --- files that are not images, and raster bombs ---------------------------------------------

PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Count 0/Kids[]>>endobj\n" \
      b"trailer<</Root 1 0 R>>\n%%EOF\n"
HTML = f"<!doctype html><html><body><script>{PWNED}=6</script><h1>scan</h1></body></html>".encode()
SVG = (f'<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256" onload="{PWNED}=7">'
       f'<script>{PWNED}=8</script><circle cx="128" cy="128" r="100"/></svg>').encode()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_pixel_bomb(side: int = 100_000) -> bytes:
    """A PNG whose header claims side x side grey pixels (10 G for the default), with one tiny IDAT."""
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + _png_chunk(b"IEND", b""))


# --- ZIPs -----------------------------------------------------------------------------------

def _zip(members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in members:
            zf.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def _symlink(name: str, target: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix, so the mode bits count
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def lying_zip_bomb(real_mb: int = 64, claimed: int = 4096) -> bytes:
    """A ZIP whose member inflates to ``real_mb`` MB while both headers claim ``claimed`` bytes."""
    data = bytearray(_zip([("small.png", b"\0" * (real_mb * 1024 * 1024))]))
    struct.pack_into("<I", data, 22, claimed)  # local header: uncompressed size
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, claimed)  # central directory: uncompressed size
    return bytes(data)


def under_ratio_zip(mb: int = 96) -> bytes:
    """A ZIP member of ``mb`` MB that deflates about 130:1, under the zip-bomb ratio cap (200:1).

    It passes the ZIP guards and is read whole into memory: the case that shows the memory
    one request can take is bounded by BRAINAI_UPLOAD_MAX_MB, not by the ratio.
    """
    rng = np.random.default_rng(7)
    chunk = 64 * 1024
    member = b"".join(rng.bytes(440) + b"\0" * (chunk - 440) for _ in range(mb * 1024 * 1024 // chunk))
    return _zip([("packed.png", member)])


def _nested(depth: int, leaf: tuple[str, bytes]) -> bytes:
    """``depth`` ZIPs one inside the other, the innermost holding ``leaf``."""
    data = _zip([leaf])
    for level in range(depth - 1, 0, -1):
        data = _zip([(f"level{level + 1}.zip", data)])
    return data


# --- the corpus -----------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def corpus() -> tuple[Case, ...]:
    """Every case, each its own upload request (a few MB in all; the zip bombs stay compressed)."""
    from pydicom.uid import JPEG2000Lossless, RLELossless

    png = b.png_bytes(seed=41)
    cases = [
        Case("truncated", [("truncated.dcm", _save(_dataset("truncated", _head(1)))[:700])],
             {"truncated.dcm": "truncated DICOM"}),
        Case("sr", [("report-sr.dcm", _sr("sr"))], {"report-sr.dcm": "no pixel data"}),
        Case("no-meta", [("no-meta.dcm", _no_meta("no-meta"))], {"no-meta.dcm": ACCEPTED}, scans=1),
        Case("jpeg2000", [("j2k.dcm", _compressed("jpeg2000", JPEG2000Lossless))], {"j2k.dcm": ACCEPTED}, scans=1),
        Case("jpeg-ls", [("jpeg-ls.dcm", _jpeg_ls("jpeg-ls"))], {"jpeg-ls.dcm": ACCEPTED}, scans=1),
        Case("rle", [("rle.dcm", _compressed("rle", RLELossless))], {"rle.dcm": ACCEPTED}, scans=1),
        Case("signed-rescale", [("signed.dcm", _signed_rescaled("signed-rescale"))], {"signed.dcm": ACCEPTED},
             scans=1),
        Case("monochrome1", [("mono1.dcm", _save(_dataset("monochrome1", _head(9),
                                                           PhotometricInterpretation="MONOCHROME1")))],
             {"mono1.dcm": ACCEPTED}, scans=1),
        Case("multi-frame", [("multi.dcm", _save(_dataset("multi-frame", np.stack([_head(10 + i) for i in range(3)]))))],
             {"multi.dcm": ACCEPTED}, scans=3),
        # Each twice, as .png and .dcm; one byte differs, or the second is refused as a repeat.
        Case("not-images", [("doc.pdf.png", PDF), ("doc.pdf.dcm", PDF + b" "), ("page.html.png", HTML),
                            ("page.html.dcm", HTML + b" "), ("vector.svg.png", SVG), ("vector.svg.dcm", SVG + b" ")],
             {n: "not a readable image" for n in ("doc.pdf.png", "doc.pdf.dcm", "page.html.png", "page.html.dcm",
                                                  "vector.svg.png", "vector.svg.dcm")},
             fields={"patient_id": "BAD-not-images"}),
        Case("pixel-bomb", [("bomb.png", png_pixel_bomb()), ("bomb.dcm", _dicom_pixel_bomb("pixel-bomb"))],
             {"bomb.png": "decompression bomb", "bomb.dcm": "limit"}, fields={"patient_id": "BAD-pixel-bomb"}),
        Case("zip-bomb", [("bomb.zip", _zip([("zeros.png", b"\0" * (64 * 1024 * 1024))])),
                          ("liar.zip", lying_zip_bomb())],
             # zipfile stops at the declared size, then the CRC fails: refused as damaged.
             {"bomb.zip/zeros.png": "zip bomb", "liar.zip/small.png": "damaged ZIP member"},
             fields={"patient_id": "BAD-zip-bomb"}),
        Case("zip-under-ratio", [("packed.zip", under_ratio_zip())],
             {"packed.zip/packed.png": "not a readable image"}, fields={"patient_id": "BAD-under-ratio"}),
        Case("nested-zip", [("nest2.zip", _nested(2, ("two.png", b.png_bytes(seed=42)))),
                            ("nest3.zip", _nested(3, ("three.png", b.png_bytes(seed=43))))],
             {"nest2.zip/level2.zip/two.png": ACCEPTED, "nest3.zip/level2.zip/level3.zip": "nested"},
             fields={"patient_id": "BAD-nested-zip"}, scans=1),
        Case("zip-slip", [("slip.zip", _zip([
            (f"../../../../{SLIP_MARK}-rel.png", b.png_bytes(seed=44)),
            (f"/tmp/{SLIP_MARK}-abs.png", b.png_bytes(seed=45)),
            (f"..\\..\\{SLIP_MARK}-win.png", b.png_bytes(seed=46)),
            (f"C:/{SLIP_MARK}-drive.png", b.png_bytes(seed=47)),
            _symlink(f"{SLIP_MARK}-link.png", "/etc/passwd"),
            ("fine.png", b.png_bytes(seed=48)),
        ]))], {f"slip.zip/../../../../{SLIP_MARK}-rel.png": "unsafe path",
               f"slip.zip//tmp/{SLIP_MARK}-abs.png": "unsafe path",
               f"slip.zip/..\\..\\{SLIP_MARK}-win.png": "unsafe path",
               f"slip.zip/C:/{SLIP_MARK}-drive.png": "unsafe path",
               f"slip.zip/{SLIP_MARK}-link.png": "symbolic link",
               "slip.zip/fine.png": ACCEPTED},
             fields={"patient_id": "BAD-zip-slip"}, scans=1),
        Case("empty", [("empty.dcm", b"")], {"empty.dcm": "file is empty"}, fields={"patient_id": "BAD-empty"}),
        Case("hostile-names", [(XSS_FILE, png)], {XSS_FILE: ACCEPTED},
             fields={"patient_id": f"BAD-{PWNED}-<b>", "patient_name": XSS_NAME,
                     "study_description": XSS_DESCRIPTION}, scans=1),
        # No "/" in the file name: every upload path keeps only a name's last part.
        Case("hostile-dicom", [(HOSTILE_DICOM_FILE, _save(_dataset(
            "hostile-dicom", _head(12), SpecificCharacterSet="ISO_IR 192", PatientName=XSS_DICOM_NAME,
            StudyDescription=XSS_DICOM_DESCRIPTION, SeriesDescription=f"<b onmouseover={PWNED}=10>T1</b>")))],
             {HOSTILE_DICOM_FILE: ACCEPTED}, scans=1),
    ]
    return tuple(cases)


def accepted_cases() -> list[Case]:
    """The cases with files the service must store and analyse."""
    return [case for case in corpus() if case.scans]


def main() -> None:
    """Write the corpus to a folder, to look at or to upload by hand: ``python -m tests.bad_input DIR``."""
    import sys

    out = Path(sys.argv[1] if len(sys.argv) > 1 else "bad-input-corpus")
    for case in corpus():
        for i, (name, data) in enumerate(case.files):
            target = out / case.key / f"{i:02d}.bin"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            print(f"{case.key:16s} {len(data):>10,d} B  {name!r}")


if __name__ == "__main__":
    main()
