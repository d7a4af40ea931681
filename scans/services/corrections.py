"""The slices radiologists corrected, written out de-identified for retraining (issue #20).

``export_corrections(out, since)`` takes every current signed or amended report whose
verdict is *disagree* and whose current signature is on or after ``since``, and writes
the slices that carry the AI finding into ``out/<corrected label>/<name>.png``, in the
one-folder-per-class layout ``python -m ml.train --data`` reads (``ml.data.dataset.scan``:
a folder per class of ``ml.labels.CLASSES``, all four made, empty or not), with
``out/manifest.csv`` (file, corrected_label, ai_label, model_name, model_version).

Which slices: the report's key slice (the one that decided the study's finding), and,
when the AI label is a tumour class, every analysed slice of the study whose own label is
that AI label (they carry the finding the radiologist corrected). For an AI finding of
"no tumour", "indeterminate" or "not a brain MRI" only the key slice: the other slices
did not show what the radiologist saw, and labelling them with the correction would
teach the model noise.

De-identified: each PNG is re-encoded from the decoded pixels of the stored original
(8-bit grey: IHDR, IDAT and IEND chunks only, no text, no EXIF, no time); names are 16
random letters (``secrets``), not derived from any id, UID or hash of the content; the
manifest holds labels and the model only, in name order (not in study order). Burned-in
text inside the pixels is not removed (docs/operations.md, "Reviewer feedback").
The export is audited as EXPORT_CORRECTIONS with counts only. Nothing here changes a row.
"""
from __future__ import annotations

import csv
import datetime as dt
import secrets
import string
import struct
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.utils import timezone

from ml.io.read import read_frames
from ml.labels import CLASSES, TUMOUR_CLASSES
from scans.models import AuditAction, Report, ReportStatus, Scan, ScanStatus, Verdict, Via
from scans.services.audit import audit
from scans.services.errors import ServiceError

MANIFEST = "manifest.csv"
MANIFEST_FIELDS = ("file", "corrected_label", "ai_label", "model_name", "model_version")


@dataclass
class ExportResult:
    reports: int = 0
    slices: int = 0
    per_class: Counter = field(default_factory=Counter)
    unreadable: int = 0  # slices whose stored pixels could not be decoded (left out)


def pixel_png(pixels: np.ndarray) -> bytes:
    """(H, W) uint8 -> an 8-bit grey PNG of exactly IHDR, IDAT and IEND: pixel data only."""
    arr = np.ascontiguousarray(pixels, dtype=np.uint8)
    if arr.ndim != 2 or not arr.size:
        raise ValueError(f"expected a 2-D grey image, got shape {arr.shape}")
    h, w = arr.shape

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + arr[y].tobytes() for y in range(h))  # filter 0 on every row
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def _random_name() -> str:
    """16 random lowercase letters (75 bits): derived from nothing, and with no digits it
    never looks like a date, an id or a UID."""
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(16))


def _pixels(scan: Scan) -> np.ndarray:
    """The slice's pixels as uint8, decoded from the stored original (else its preview)."""
    last: Exception | None = None
    for f in (scan.source, scan.image):
        if not f:
            continue
        try:
            with f.open("rb") as fh:
                frames = read_frames(fh.read())
            frame = frames[min(scan.frame_index, len(frames) - 1)] if f is scan.source else frames[0]
            return np.clip(np.asarray(frame.pixels, np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        except Exception as exc:  # noqa: BLE001 - an unreadable file is counted and skipped
            last = exc
    raise ValueError("no readable pixels") from last


def corrected_reports(since: dt.date):
    """Current signed/amended versions with verdict disagree, signed on or after ``since``."""
    start = timezone.make_aware(dt.datetime.combine(since, dt.time.min))
    return (Report.objects.current().filter(status__in=[ReportStatus.SIGNED, ReportStatus.AMENDED],
                                            verdict=Verdict.DISAGREE, verdict_label__in=CLASSES,
                                            signed_at__gte=start)
            .select_related("key_scan").order_by("pk"))


def finding_slices(report: Report) -> list[Scan]:
    """The slices that carry the AI finding (see the module docstring), key slice first."""
    out = [report.key_scan] if report.key_scan_id else []
    if report.label in TUMOUR_CLASSES:
        more = (Scan.objects.filter(study_id=report.study_id, status=ScanStatus.ANALYZED, analysis__label=report.label)
                .exclude(pk=report.key_scan_id).order_by("pk"))
        out += list(more)
    return out


def export_corrections(out: str | Path, since: dt.date, *, user=None, via: Via = Via.COMMAND) -> ExportResult:
    """Write the corrected slices and the manifest under ``out`` (absent or empty).

    Raises:
        ServiceError: ``out`` exists and is not an empty folder (nothing is written).
    """
    root = Path(out)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ServiceError(f"{root} must be an empty folder or not exist yet")
    for label in CLASSES:
        (root / label).mkdir(parents=True, exist_ok=True)
    result, rows = ExportResult(), []
    for report in corrected_reports(since):
        wrote = 0
        for scan in finding_slices(report):
            try:
                png = pixel_png(_pixels(scan))
            except ValueError:
                result.unreadable += 1
                continue
            name = f"{_random_name()}.png"
            (root / report.verdict_label / name).write_bytes(png)
            rows.append({"file": f"{report.verdict_label}/{name}", "corrected_label": report.verdict_label,
                         "ai_label": report.label, "model_name": report.model_name,
                         "model_version": report.model_version})
            result.per_class[report.verdict_label] += 1
            wrote += 1
        result.slices += wrote
        result.reports += bool(wrote)
    with open(root / MANIFEST, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=MANIFEST_FIELDS)
        writer.writeheader()
        writer.writerows(sorted(rows, key=lambda r: r["file"]))
    audit(AuditAction.EXPORT_CORRECTIONS, user, via=via, reports=result.reports, slices=result.slices,
          unreadable=result.unreadable, **{f"n_{label}": result.per_class[label] for label in CLASSES})
    return result
