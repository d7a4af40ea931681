"""Turn what a person uploaded into a flat list of candidate files, safely.

Handles ZIPs (nested up to a depth, guarded against zip bombs, path traversal,
encrypted and link members) and manifest.csv files. No database here: this module only
reads bytes and reports what it refuses, in words a person understands.
"""
from __future__ import annotations

import csv
import io
import posixpath
import stat
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime

from django.conf import settings

MANIFEST_NAME = "manifest.csv"
MANIFEST_COLUMNS = (
    "file", "patient_id", "patient_name", "patient_birth_date", "patient_sex",
    "study", "study_description", "study_date", "series_description",
)
_FILE_COLUMN_ALIASES = ("file", "filename", "path")
_OS_JUNK = (".ds_store", "thumbs.db", "desktop.ini")


@dataclass
class Candidate:
    """One file that may hold images."""

    name: str  # as the person knows it: "upload.zip/study1/IM0001.dcm"
    data: bytes
    rel_path: str  # path inside its ZIP (or the bare name) for manifest matching


@dataclass
class Rejection:
    name: str
    reason: str

    def as_dict(self) -> dict:
        return {"name": self.name, "reason": self.reason}


@dataclass
class Expanded:
    candidates: list[Candidate] = field(default_factory=list)
    manifests: list[Candidate] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)


class _Budget:
    """Limits shared by every ZIP of one upload, so nesting cannot multiply them."""

    def __init__(self):
        self.members_left = settings.BRAINAI_ZIP_MAX_MEMBERS
        self.bytes_left = settings.BRAINAI_UPLOAD_MAX_MB * 1024 * 1024


def looks_like_zip(name: str, data: bytes) -> bool:
    return data[:4] in (b"PK\x03\x04", b"PK\x05\x06") or name.lower().endswith(".zip")


def is_manifest(name: str) -> bool:
    return posixpath.basename(name.replace("\\", "/")).lower() == MANIFEST_NAME


def expand(files) -> Expanded:
    """Flatten uploaded files (objects with ``.name`` and ``.read()``) into candidates."""
    out = Expanded()
    budget = _Budget()
    for upload in files:
        name = posixpath.basename(str(getattr(upload, "name", "") or "unnamed").replace("\\", "/")) or "unnamed"
        data = upload.read()
        if len(data) > budget.bytes_left:
            out.rejected.append(Rejection(name, f"upload exceeds {settings.BRAINAI_UPLOAD_MAX_MB} MB; split it"))
            continue
        budget.bytes_left -= len(data)
        _add(out, budget, name, name, data, depth=0)
    return out


def _add(out: Expanded, budget: _Budget, name: str, rel_path: str, data: bytes, depth: int) -> None:
    base = posixpath.basename(rel_path).lower()
    if base in _OS_JUNK or base.startswith("._") or "__macosx/" in rel_path.lower():
        out.rejected.append(Rejection(name, "operating-system metadata file, not an image"))
    elif is_manifest(rel_path):
        out.manifests.append(Candidate(name, data, rel_path))
    elif looks_like_zip(name, data):
        if depth + 1 > settings.BRAINAI_ZIP_MAX_DEPTH:  # a top-level ZIP is level 1
            out.rejected.append(Rejection(name, f"ZIP nested more than {settings.BRAINAI_ZIP_MAX_DEPTH} levels deep; unpack it first"))
        else:
            _expand_zip(out, budget, name, data, depth + 1)
    elif not data:
        out.rejected.append(Rejection(name, "file is empty"))
    else:
        out.candidates.append(Candidate(name, data, rel_path))


def _unsafe(member_name: str) -> bool:
    path = member_name.replace("\\", "/")
    parts = path.split("/")
    return path.startswith("/") or ".." in parts or (len(path) > 1 and path[1] == ":")


def _expand_zip(out: Expanded, budget: _Budget, zip_name: str, data: bytes, depth: int) -> None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError):
        out.rejected.append(Rejection(zip_name, "damaged or unsupported ZIP file"))
        return
    for info in infos:
        if info.is_dir():
            continue
        name = f"{zip_name}/{info.filename}"
        reason = _member_problem(info, budget)
        if reason:
            out.rejected.append(Rejection(name, reason))
            continue
        try:
            member = _read_capped(archive, info, budget)
        except _TooBig as exc:
            out.rejected.append(Rejection(name, str(exc)))
            continue
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError):
            out.rejected.append(Rejection(name, "damaged ZIP member (CRC or compression error)"))
            continue
        _add(out, budget, name, info.filename.replace("\\", "/"), member, depth)


def _member_problem(info: zipfile.ZipInfo, budget: _Budget) -> str | None:
    if _unsafe(info.filename):
        return "unsafe path in ZIP (absolute or with '..'); refused"
    if info.flag_bits & 0x1:
        return "encrypted ZIP member; upload it unencrypted"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "symbolic link inside ZIP; refused"
    if budget.members_left <= 0:
        return f"ZIP holds more than {settings.BRAINAI_ZIP_MAX_MEMBERS} files; split the upload"
    budget.members_left -= 1
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size > 1024 * 1024 and ratio > settings.BRAINAI_ZIP_MAX_RATIO:
        return f"compression ratio {ratio:.0f}:1 is suspicious (a zip bomb?); refused"
    if info.file_size > budget.bytes_left:
        return f"unpacked upload would exceed {settings.BRAINAI_UPLOAD_MAX_MB} MB; split it"
    return None


class _TooBig(Exception):
    pass


def _read_capped(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: _Budget) -> bytes:
    """Read a member but never more than its declared size (headers can lie)."""
    limit = min(info.file_size, budget.bytes_left)
    with archive.open(info) as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise _TooBig("member is larger than its ZIP header says (a zip bomb?); refused")
    budget.bytes_left -= len(data)
    return data


# --- manifest.csv -------------------------------------------------------------------------


@dataclass
class ManifestRow:
    line: int
    values: dict
    error: str | None = None


@dataclass
class Manifest:
    """Rows keyed by path relative to the manifest's folder, plus a basename index."""

    by_path: dict[str, ManifestRow] = field(default_factory=dict)
    by_basename: dict[str, list[ManifestRow]] = field(default_factory=dict)
    used: set[int] = field(default_factory=set)

    def lookup(self, rel_path: str) -> ManifestRow | None:
        row = self.by_path.get(rel_path) or self.by_path.get(rel_path.lower())
        if row is None:
            rows = self.by_basename.get(posixpath.basename(rel_path).lower(), [])
            row = rows[0] if len(rows) == 1 else None
        if row is not None:
            self.used.add(id(row))
        return row

    def unused_rows(self) -> list[ManifestRow]:
        unique = {id(r): r for r in self.by_path.values()}
        return sorted((r for k, r in unique.items() if k not in self.used), key=lambda r: r.line)


def parse_manifests(manifests: list[Candidate], rejected: list[Rejection]) -> Manifest:
    result = Manifest()
    for candidate in manifests:
        folder = posixpath.dirname(candidate.rel_path)
        try:
            text = candidate.data.decode("utf-8-sig")
        except UnicodeDecodeError:
            rejected.append(Rejection(candidate.name, "manifest.csv is not UTF-8 text"))
            continue
        try:
            dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        reader = csv.DictReader(io.StringIO(text), dialect=dialect)
        columns = {c.strip().lower(): c for c in (reader.fieldnames or []) if c}
        file_col = next((columns[a] for a in _FILE_COLUMN_ALIASES if a in columns), None)
        if file_col is None or "patient_id" not in columns:
            rejected.append(Rejection(candidate.name, "manifest.csv needs the columns 'file' and 'patient_id'"))
            continue
        for line, raw in enumerate(reader, start=2):
            values = {key: (raw.get(col) or "").strip() for key, col in columns.items()}
            path = (raw.get(file_col) or "").strip().replace("\\", "/").lstrip("./")
            if not path:
                continue
            row = ManifestRow(line, values, _row_error(values, line))
            key = posixpath.normpath(posixpath.join(folder, path)) if folder else path
            result.by_path[key] = row
            result.by_path.setdefault(key.lower(), row)
            result.by_basename.setdefault(posixpath.basename(key).lower(), []).append(row)
    return result


def _row_error(values: dict, line: int) -> str | None:
    if not values.get("patient_id"):
        return f"manifest.csv line {line}: patient_id is empty"
    for key in ("patient_birth_date", "study_date"):
        if values.get(key) and parse_date(values[key]) is None:
            return f"manifest.csv line {line}: {key} {values[key]!r} is not a date (YYYY-MM-DD)"
    if values.get("patient_sex") and values["patient_sex"].upper()[:1] not in ("F", "M", "O"):
        return f"manifest.csv line {line}: patient_sex must be F, M or O"
    return None


def parse_date(value) -> date | None:
    """YYYY-MM-DD or DICOM's YYYYMMDD; a date passes through; anything else is None."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None
