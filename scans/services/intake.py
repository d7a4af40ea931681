"""Reading an upload: received files in, prepared items and rejections out.

One pass, in one direction: expand ZIPs (nested up to a depth, guarded against zip bombs,
path traversal, encrypted and link members), match manifest.csv rows, read each file
with the ml readers (JPEG, PNG, DICOM), and parse its patient, study and series fields.
The caller stores what comes out (``scans.services.uploads``).

No database and no HTTP here: the input is plain ``(name, bytes)`` files, so the portal,
the API and a DICOM receiver hand their files to the same ``read_upload``. Duplicates
within the upload are found here; duplicates of what is already stored are the storing
code's business. Every refusal is a ``Rejection`` in words a person understands; nothing
identifying is logged.
"""
from __future__ import annotations

import csv
import hashlib
import io
import logging
import posixpath
import stat
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Iterable, NamedTuple

from django.conf import settings

from ml.errors import ImageReadError
from ml.io.read import looks_like_dicom, read_frames

logger = logging.getLogger(__name__)

FIELD_NAMES = ("patient_id", "patient_name", "patient_birth_date", "patient_sex",
               "study_description", "study_date")
MANIFEST_NAME = "manifest.csv"
_FILE_COLUMN_ALIASES = ("file", "filename", "path")
_OS_JUNK = (".ds_store", "thumbs.db", "desktop.ini")
_SEXES = ("F", "M", "O")


class IncomingFile(NamedTuple):
    """One received file, as the sender named it; a plain ``(name, data)`` tuple works too."""

    name: str
    data: bytes


@dataclass
class Rejection:
    name: str
    reason: str

    def as_dict(self) -> dict:
        return {"name": self.name, "reason": self.reason}


@dataclass
class PreparedItem:
    """One readable file with everything the storing code needs to file it."""

    name: str  # as the person knows it: "upload.zip/study1/IM0001.dcm"
    data: bytes
    sha256: str
    frames: list  # ml Frames: one per image, one per frame of a multi-frame DICOM
    is_dicom: bool
    patient: dict  # patient_id, name, birth_date, sex
    study_key: str  # DICOM Study Instance UID, or a key for images grouped in this upload
    study: dict  # uid (None for images), date, description, modality
    series_key: str
    series: dict  # uid (None for images), description, number, modality
    instance_number: int | None = None

    @property
    def sop_instance_uid(self) -> str:
        return self.frames[0].meta.get("sop_instance_uid") or ""


@dataclass
class ReadUpload:
    """What one upload holds: items ready to store, and every file refused with its reason."""

    items: list[PreparedItem]
    rejected: list[Rejection]


def read_upload(files: Iterable[IncomingFile | tuple[str, bytes]], fields: dict | None = None) -> ReadUpload:
    """Read every received file of one upload; nothing is stored.

    Args:
        files: ``(name, data)`` pairs, read one at a time.
        fields: ``patient_id``, ``patient_name``, ``patient_birth_date``, ``patient_sex``,
            ``study_description``, ``study_date`` for non-DICOM images that no
            manifest.csv describes; other keys and empty values are ignored.

    Returns:
        The items in upload order, and the rejections (unsafe ZIP members, manifest
        problems, unreadable files, duplicates within the upload, files without a
        patient, manifest rows naming no file).
    """
    fields = {k: v for k, v in (fields or {}).items() if k in FIELD_NAMES and v not in (None, "")}
    expanded = expand(files)
    rejected: list[Rejection] = list(expanded.rejected)
    manifest = parse_manifests(expanded.manifests, rejected)
    items = _read_candidates(expanded.candidates, manifest, fields, rejected)
    for row in manifest.unused_rows():
        rejected.append(Rejection(f"manifest.csv line {row.line}", "names a file that is not in the upload"))
    return ReadUpload(items, rejected)


# --- ZIPs and manifests: received files -> candidate files ---------------------------------


@dataclass
class Candidate:
    """One file that may hold images."""

    name: str  # as the person knows it: "upload.zip/study1/IM0001.dcm"
    data: bytes
    rel_path: str  # path inside its ZIP (or the bare name) for manifest matching


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


def expand(files: Iterable[IncomingFile | tuple[str, bytes]]) -> Expanded:
    """Flatten received ``(name, data)`` files into candidates, manifests and rejections."""
    out = Expanded()
    budget = _Budget()
    for raw_name, data in files:
        name = posixpath.basename(str(raw_name or "unnamed").replace("\\", "/")) or "unnamed"
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
    """Index every manifest.csv row by the path it names; a file it cannot use is a rejection."""
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
    if values.get("patient_sex") and not _sex(values["patient_sex"]):
        return f"manifest.csv line {line}: patient_sex must be F, M or O"
    return None


# --- reading the files and their metadata -------------------------------------------------


def _read_candidates(candidates: list[Candidate], manifest: Manifest, fields: dict,
                     rejected: list[Rejection]) -> list[PreparedItem]:
    """Read every candidate once; drop repeats within the upload and mixed-patient studies,
    and every instance of a series with more than ``BRAINAI_SERIES_MAX_INSTANCES``."""
    seen_sha: dict[str, str] = {}
    seen_sop: dict[str, str] = {}
    study_patients: dict[str, str] = {}
    series_sizes: dict[str, int] = {}
    too_large: dict[str, list[str]] = {}  # series key -> names of its instances, decoded and dropped
    limit = settings.BRAINAI_SERIES_MAX_INSTANCES
    items = []
    for cand in candidates:
        sha = hashlib.sha256(cand.data).hexdigest()
        if sha in seen_sha:
            rejected.append(Rejection(cand.name, f"duplicate: same content as {seen_sha[sha]} in this upload"))
            continue
        seen_sha[sha] = cand.name
        if too_large:  # a series already refused: its other instances are not decoded
            refused = _series_uid(cand.data)
            if refused in too_large:
                too_large[refused].append(cand.name)
                continue
        item = _read_one(cand, sha, manifest, fields, rejected)
        if item is None:
            continue
        sop = item.sop_instance_uid
        if sop:
            if sop in seen_sop:
                rejected.append(Rejection(cand.name, f"duplicate: same SOP Instance UID as {seen_sop[sop]} in this upload"))
                continue
            seen_sop[sop] = cand.name
        owner = study_patients.setdefault(item.study_key, item.patient["patient_id"])
        if owner != item.patient["patient_id"]:
            rejected.append(Rejection(cand.name, "belongs to a study whose other files name a different patient"))
            continue
        # Memory stays bounded: past the limit, a series' decoded frames are let go at once.
        size = series_sizes[item.series_key] = series_sizes.get(item.series_key, 0) + 1
        if size > limit:
            if item.series_key not in too_large:
                too_large[item.series_key] = [i.name for i in items if i.series_key == item.series_key]
                items = [i for i in items if i.series_key != item.series_key]
            too_large[item.series_key].append(item.name)
            continue
        items.append(item)
    for key, names in too_large.items():
        logger.warning("a series of %d instances was refused (BRAINAI_SERIES_MAX_INSTANCES=%d)", len(names), limit)
        reason = (f"series too large: {len(names)} instances in one series, more than the limit of {limit} "
                  f"(BRAINAI_SERIES_MAX_INSTANCES); the whole series was refused, the rest of the upload was kept")
        rejected.extend(Rejection(name, reason) for name in names)
    return items


def _series_uid(data: bytes) -> str | None:
    """A DICOM file's Series Instance UID from its header alone (no pixels), or None."""
    if not looks_like_dicom(data):
        return None
    try:
        import pydicom

        uid = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True,
                              specific_tags=["SeriesInstanceUID"]).get("SeriesInstanceUID")
    except Exception:  # unreadable header: the full read says why
        return None
    return str(uid) if uid else None


def _read_one(cand: Candidate, sha: str, manifest: Manifest, fields: dict,
              rejected: list[Rejection]) -> PreparedItem | None:
    try:
        frames = read_frames(cand.data)
    except ImageReadError as exc:
        rejected.append(Rejection(cand.name, str(exc)))
        return None
    except Exception as exc:  # a decoder bug must not sink the whole upload
        logger.warning("unexpected %s while reading an uploaded file", type(exc).__name__)
        rejected.append(Rejection(cand.name, "could not be read as an image (unexpected decoder error)"))
        return None
    meta = frames[0].meta
    is_dicom = looks_like_dicom(cand.data) or bool(meta.get("sop_instance_uid") or meta.get("study_instance_uid"))
    row = manifest.lookup(cand.rel_path)
    if row is not None and row.error:
        rejected.append(Rejection(cand.name, row.error))
        return None
    values = row.values if row is not None else {}
    patient = _patient(meta if is_dicom else {}, values, fields)
    if not patient.get("patient_id"):
        reason = ("the DICOM has no Patient ID; give patient_id" if is_dicom else
                  "no patient for this image: fill patient_id or add a manifest.csv")
        rejected.append(Rejection(cand.name, reason))
        return None
    description = values.get("study_description") or fields.get("study_description") or ""
    if is_dicom and meta.get("study_instance_uid"):
        study_key = meta["study_instance_uid"]
        study = {"uid": study_key, "date": parse_date(meta.get("study_date")),
                 "description": meta.get("study_description") or description,
                 "modality": meta.get("modality") or ""}
        series_key = meta.get("series_instance_uid") or f"{study_key}.1"
        series = {"uid": series_key, "description": meta.get("series_description") or "",
                  "number": _int(meta.get("series_number")), "modality": meta.get("modality") or ""}
    else:
        group = values.get("study") or description
        study_key = f"upload:{patient['patient_id']}:{group}"
        study = {"uid": None, "date": parse_date(values.get("study_date") or fields.get("study_date")),
                 "description": description, "modality": meta.get("modality") or ""}
        series_key = f"{study_key}:{values.get('series_description', '')}"
        series = {"uid": None, "description": values.get("series_description") or "Uploaded images",
                  "number": 1, "modality": study["modality"]}
    return PreparedItem(cand.name, cand.data, sha, frames, is_dicom, patient, study_key, study, series_key, series,
                        instance_number=_int(meta.get("instance_number")))


def _patient(meta: dict, values: dict, fields: dict) -> dict:
    """The patient from the first source that names one: DICOM tags, manifest row, form fields."""
    for source in (meta, values, fields):
        if source.get("patient_id"):
            return {
                "patient_id": str(source["patient_id"]).strip()[:64],
                "name": _person_name(source.get("patient_name")),
                "birth_date": parse_date(source.get("patient_birth_date")),
                "sex": _sex(source.get("patient_sex")),
            }
    return {}


def _person_name(value) -> str:
    """DICOM PN 'Family^Given^Middle' -> 'Family, Given Middle'; plain text unchanged."""
    text = str(value or "").strip()
    if "^" not in text:
        return text[:200]
    family, *rest = [p for p in text.split("^")]
    given = " ".join(p for p in rest[:2] if p)
    return (f"{family}, {given}" if given else family)[:200]


def _sex(value) -> str:
    """'F', 'M' or 'O' from the first letter of the value ('female' -> 'F'); else ''."""
    letter = str(value or "").upper()[:1]
    return letter if letter in _SEXES else ""


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
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
