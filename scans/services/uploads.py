"""register_upload: files in, Patient/Study/Series/Scan rows and stored files out.

Every file ends up either accepted (one Scan per image or DICOM frame) or in the
rejected list with a reason a person understands. Nothing identifying is logged.
"""
from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass, field

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from ml.errors import ImageReadError
from ml.imageio import looks_like_dicom, read_frames
from scans.models import (
    AuditAction, Patient, Report, ReportStatus, Scan, Series, Study, StudyStatus, Upload, Via,
)
from scans.services import ingest
from scans.services.analysis import reopen_study
from scans.services.audit import audit
from scans.services.images import grey_png
from scans.services.ingest import Rejection, parse_date
from scans.services.model_choice import check_model_name
from scans.services.queue import ANALYZE_STUDY, enqueue

logger = logging.getLogger(__name__)

FIELD_NAMES = ("patient_id", "patient_name", "patient_birth_date", "patient_sex",
               "study_description", "study_date")


@dataclass
class UploadResult:
    upload: Upload
    studies: list[Study]
    accepted: int
    rejected: list[dict]

    @property
    def id(self) -> int:
        return self.upload.pk


@dataclass
class _Prepared:
    candidate: ingest.Candidate
    sha256: str
    frames: list
    is_dicom: bool
    patient: dict
    study_key: str  # DICOM Study Instance UID, or a key for images grouped in this upload
    study: dict
    series_key: str
    series: dict
    instance_number: int | None = None
    scans: list = field(default_factory=list)


def register_upload(user, files, fields=None, *, via: Via = Via.API, model: str | None = None) -> UploadResult:
    """Store uploaded files as scans, grouped into studies, and queue their analysis.

    Args:
        user: who uploads (recorded on the studies and in the audit log).
        files: objects with ``.name`` and ``.read()`` (Django UploadedFile, or any file).
        fields: optional ``patient_id``, ``patient_name``, ``patient_birth_date``,
            ``patient_sex``, ``study_description``, ``study_date`` for non-DICOM images
            that no manifest.csv describes.
        model: the classifier for the studies this upload creates (an
            ``ml.registry.available_models()`` name); empty = the configured default.
            Images added to an existing study are analysed with that study's model, so
            one report never mixes two classifiers.

    Raises:
        UnknownModel: ``model`` is not an available model (nothing is stored).
    """
    model = check_model_name(model)
    fields = {k: v for k, v in (fields or {}).items() if k in FIELD_NAMES and v not in (None, "")}
    files = list(files)
    expanded = ingest.expand(files)
    rejected: list[Rejection] = list(expanded.rejected)
    manifest = ingest.parse_manifests(expanded.manifests, rejected)
    prepared = _prepare(expanded.candidates, manifest, fields, rejected)
    for row in manifest.unused_rows():
        rejected.append(Rejection(f"manifest.csv line {row.line}", "names a file that is not in the upload"))
    with transaction.atomic():
        upload = Upload.objects.create(uploaded_by=user if user and user.is_authenticated else None,
                                       files_received=len(files))
        studies, accepted = _store(upload, user, prepared, rejected, model)
        upload.accepted = accepted
        upload.rejected = [r.as_dict() for r in rejected]
        upload.save(update_fields=["accepted", "rejected"])
        audit(AuditAction.UPLOAD, user, via=via, upload=upload.pk, accepted=accepted,
              rejected=len(rejected), studies=[s.pk for s in studies], model=model)
        for study in studies:
            enqueue(ANALYZE_STUDY, study.pk)
    logger.info("upload %s: %d files accepted, %d rejected, %d studies",
                upload.pk, accepted, len(rejected), len(studies))
    return UploadResult(upload, studies, accepted, upload.rejected)


# --- reading and grouping (no database writes) --------------------------------------------


def _prepare(candidates, manifest, fields, rejected) -> list[_Prepared]:
    shas = {c.name: hashlib.sha256(c.data).hexdigest() for c in candidates}
    in_db = dict(Scan.objects.filter(sha256__in=set(shas.values())).values_list("sha256", "study_id"))
    seen_sha: dict[str, str] = {}
    seen_sop: dict[str, str] = {}
    study_patients: dict[str, str] = {}
    prepared = []
    for cand in candidates:
        sha = shas[cand.name]
        if sha in seen_sha:
            rejected.append(Rejection(cand.name, f"duplicate: same content as {seen_sha[sha]} in this upload"))
            continue
        if sha in in_db:
            rejected.append(Rejection(cand.name, f"duplicate: the same file is already in study {in_db[sha]}"))
            continue
        seen_sha[sha] = cand.name
        item = _read_one(cand, sha, manifest, fields, rejected)
        if item is None:
            continue
        sop = item.frames[0].meta.get("sop_instance_uid") or ""
        if sop:
            if sop in seen_sop:
                rejected.append(Rejection(cand.name, f"duplicate: same SOP Instance UID as {seen_sop[sop]} in this upload"))
                continue
            other = Scan.objects.filter(sop_instance_uid=sop).values_list("study_id", flat=True).first()
            if other is not None:
                rejected.append(Rejection(cand.name, f"duplicate: this DICOM instance (SOP Instance UID) is already in study {other}"))
                continue
            seen_sop[sop] = cand.name
        owner = study_patients.setdefault(item.study_key, item.patient["patient_id"])
        if owner != item.patient["patient_id"]:
            rejected.append(Rejection(cand.name, "belongs to a study whose other files name a different patient"))
            continue
        prepared.append(item)
    return prepared


def _read_one(cand, sha, manifest, fields, rejected) -> _Prepared | None:
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
    return _Prepared(cand, sha, frames, is_dicom, patient, study_key, study, series_key, series,
                     instance_number=_int(meta.get("instance_number")))


def _patient(meta: dict, values: dict, fields: dict) -> dict:
    for source in (meta, values, fields):
        if source.get("patient_id"):
            return {
                "patient_id": str(source["patient_id"]).strip()[:64],
                "name": _person_name(source.get("patient_name")),
                "birth_date": parse_date(source.get("patient_birth_date")),
                "sex": (str(source.get("patient_sex") or "").upper()[:1]) if str(source.get("patient_sex") or "").upper()[:1] in ("F", "M", "O") else "",
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


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# --- writing ------------------------------------------------------------------------------


def _store(upload, user, prepared: list[_Prepared], rejected: list[Rejection], model: str):
    patients: dict[str, Patient] = {}
    studies: dict[str, Study] = {}
    refused: dict[str, str] = {}
    series_by_key: dict[str, Series] = {}
    next_instance: dict[int, int] = {}
    scans: list[Scan] = []
    accepted = 0
    for item in prepared:
        if item.study_key in refused:
            rejected.append(Rejection(item.candidate.name, refused[item.study_key]))
            continue
        patient = patients.get(item.patient["patient_id"]) or _patient_row(item.patient)
        patients[patient.patient_id] = patient
        study = studies.get(item.study_key)
        if study is None:
            study, problem = _study_row(item, patient, user, model)
            if problem:
                refused[item.study_key] = problem
                rejected.append(Rejection(item.candidate.name, problem))
                continue
            studies[item.study_key] = study
        series = series_by_key.get(item.series_key) or _series_row(item, study)
        series_by_key[item.series_key] = series
        source_name = _save_source(item)
        for index, frame in enumerate(item.frames):
            number = item.instance_number
            if number is None:
                number = next_instance.get(series.pk, 0) + 1
                next_instance[series.pk] = number
            scans.append(_scan_row(upload, study, series, item, index, frame, source_name, number))
        accepted += 1
    Scan.objects.bulk_create(scans, batch_size=500)
    for study in studies.values():
        Report.objects.get_or_create(study=study, is_current=True, defaults={"version": 1})
        if study.status != StudyStatus.ANALYZING:
            reopen_study(study)
    return list(studies.values()), accepted


def _patient_row(info: dict) -> Patient:
    patient, created = Patient.objects.get_or_create(
        patient_id=info["patient_id"],
        defaults={"name": info["name"], "birth_date": info["birth_date"], "sex": info["sex"]},
    )
    if not created:  # fill what we did not know; never overwrite what the clinic recorded
        changed = [f for f, key in (("name", "name"), ("birth_date", "birth_date"), ("sex", "sex"))
                   if not getattr(patient, f) and info.get(key)]
        for f in changed:
            setattr(patient, f, info[f])
        if changed:
            patient.save(update_fields=changed)
    return patient


def _study_row(item: _Prepared, patient: Patient, user, model: str) -> tuple[Study | None, str | None]:
    uid = item.study["uid"]
    if uid:
        existing = Study.objects.select_for_update().filter(study_instance_uid=uid).first()
        if existing is not None:
            if existing.patient_id != patient.pk:
                return None, f"study {existing.pk} with this Study Instance UID belongs to another patient"
            report = existing.reports.filter(is_current=True).first()
            if report is not None and report.status in (ReportStatus.SIGNED, ReportStatus.AMENDED):
                return None, f"study {existing.pk} is already signed; new images need a new study"
            return existing, None
    study = Study.objects.create(
        patient=patient,
        study_instance_uid=uid or _new_uid(),
        study_date=item.study["date"],
        description=item.study["description"][:200],
        modality=item.study["modality"][:16],
        requested_model=model,
        uploaded_by=user if user and user.is_authenticated else None,
    )
    return study, None


def _series_row(item: _Prepared, study: Study) -> Series:
    series, _ = Series.objects.get_or_create(
        study=study,
        series_instance_uid=item.series["uid"] or _new_uid(),
        defaults={"description": item.series["description"][:200], "number": item.series["number"],
                  "modality": item.series["modality"][:16]},
    )
    return series


def _save_source(item: _Prepared) -> str:
    ext = ".dcm" if item.is_dicom else {"JPEG": ".jpg", "PNG": ".png"}.get(item.frames[0].meta.get("format"), ".img")
    name = f"sources/{item.sha256[:2]}/{item.sha256}{ext}"
    if not default_storage.exists(name):
        name = default_storage.save(name, ContentFile(item.candidate.data))
    return name


def _scan_row(upload, study, series, item: _Prepared, index: int, frame, source_name: str, number) -> Scan:
    meta = frame.meta
    preview = f"previews/{item.sha256[:2]}/{item.sha256}-{index}.png"
    if not default_storage.exists(preview):
        preview = default_storage.save(preview, ContentFile(grey_png(frame.pixels)))
    orientation = meta.get("image_orientation_patient")
    return Scan(
        study=study, series=series, upload=upload, source=source_name, image=preview,
        original_name=item.candidate.name[:255], sha256=item.sha256, frame_index=index,
        sop_instance_uid=(meta.get("sop_instance_uid") or item.frames[0].meta.get("sop_instance_uid") or "")[:64],
        instance_number=number, rows=int(frame.pixels.shape[0]), columns=int(frame.pixels.shape[1]),
        orientation=[float(v) for v in orientation] if orientation is not None else None,
    )


def _new_uid() -> str:
    """A DICOM UID from a UUID (the 2.25 root, PS3.5 B.2) for images that carry none."""
    return f"2.25.{uuid.uuid4().int}"
