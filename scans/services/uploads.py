"""register_upload: files in, Patient/Study/Series/Scan rows and stored files out.

Reading the files is ``scans.services.intake`` (no database); this module stores what it
prepared: rows and files, duplicates of what is already stored, reopened studies. Every
file ends up either accepted (one Scan per image or DICOM frame) or in the rejected list
with a reason a person understands. Nothing identifying is logged.
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from functools import partial

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Count

from scans.models import (
    AuditAction, EventKind, Patient, Scan, ScanStatus, Series, Study, StudyStatus, Upload, Via,
)
from scans.services import events
from scans.services.analysis import open_report, reopen_study
from scans.services.audit import audit
from scans.services.errors import StorageUnavailable
from scans.services.images import grey_png
from scans.services.intake import IncomingFile, PreparedItem, Rejection, read_upload
from scans.services.model_choice import check_model_name
from scans.services.priority import check_priority, priority_for_upload, queue_analysis
from scans.services.selection import decide_upload
from scans.services.state import move_scans

logger = logging.getLogger(__name__)


@dataclass
class UploadResult:
    upload: Upload
    studies: list[Study]
    accepted: int
    rejected: list[dict]


def register_upload(user, files, fields=None, *, via: Via = Via.API, model: str | None = None,
                    priority: str | None = None, calling_ae: str = "") -> UploadResult:
    """Store uploaded files as scans, grouped into studies, and queue their analysis.

    Args:
        user: who uploads (recorded on the studies and in the audit log).
        files: objects with ``.name`` and ``.read()`` (Django UploadedFile, or any file).
        fields: optional ``patient_id``, ``patient_name``, ``patient_birth_date``,
            ``patient_sex``, ``study_description``, ``study_date`` for non-DICOM images
            that no manifest.csv describes.
        model: the classifier for the studies this upload creates (an
            ``ml.model.registry.available_models()`` name); empty = the configured default.
            Images added to an existing study are analysed with that study's model, so
            one report never mixes two classifiers.
        priority: the gpu lane of the studies this upload creates (a Priority value);
            None = the first BRAINAI_PRIORITY_RULES rule that matches ``calling_ae`` and
            the study description, else routine (scans.services.priority). An existing
            study keeps its lane (``set_priority`` changes it).
        calling_ae: the DICOM sender's AE title (the listener's uploads), for the rules.

    Raises:
        UnknownModel: ``model`` is not an available model (nothing is stored).
        ValueError: ``priority`` is not a Priority value (nothing is stored).
    """
    model = check_model_name(model)
    lane = partial(priority_for_upload, check_priority(priority) if priority else None, calling_ae=calling_ae)
    files = list(files)
    received = read_upload((IncomingFile(getattr(f, "name", ""), f.read()) for f in files), fields)
    for attempt in range(_RACE_ATTEMPTS):
        rejected = list(received.rejected)
        prepared = _not_stored_yet(received.items, rejected)
        try:
            with transaction.atomic():
                upload, studies, accepted = _store_upload(user, len(files), prepared, rejected, model, via, lane)
            break
        except OSError as exc:
            # The rows roll back; files written whole stay (content-addressed: the next
            # upload of the same file reuses them) and a half-written one was removed.
            logger.error("upload not stored: the media storage refused a write (%s)", type(exc).__name__)
            raise StorageUnavailable(f"the upload was not stored: the media storage refused a write "
                                     f"({exc.strerror or type(exc).__name__}); nothing was recorded, "
                                     f"send it again once an administrator has freed space") from exc
        except IntegrityError:
            # A concurrent upload stored the same file, instance, study or patient between
            # the duplicate check and the insert. Nothing of this try is kept; the next one
            # sees the other upload's rows and reports its files as duplicates.
            if attempt == _RACE_ATTEMPTS - 1:
                raise
            logger.info("upload raced a concurrent upload; checking for duplicates again")
    logger.info("upload %s: %d files accepted, %d rejected, %d studies",
                upload.pk, accepted, len(rejected), len(studies))
    return UploadResult(upload, studies, accepted, upload.rejected)


_RACE_ATTEMPTS = 3  # a race is lost at most once per conflicting upload that commits first


def _store_upload(user, files_received: int, prepared, rejected: list[Rejection], model: str, via: Via,
                  lane=priority_for_upload):
    """register_upload's writes, inside the caller's transaction: the Upload row, the scans,
    the audit event, and the studies' analysis queued on commit."""
    upload = Upload.objects.create(uploaded_by=user if user and user.is_authenticated else None,
                                   files_received=files_received)
    studies, accepted = _store(upload, user, prepared, rejected, model, lane)
    upload.accepted = accepted
    upload.rejected = [r.as_dict() for r in rejected]
    upload.save(update_fields=["accepted", "rejected"])
    audit(AuditAction.UPLOAD, user, via=via, upload=upload.pk, accepted=accepted,
          rejected=len(rejected), studies=[s.pk for s in studies], model=model)
    counts = dict(Scan.objects.filter(upload=upload).values_list("study_id").annotate(n=Count("pk")).order_by())
    pending = dict(Scan.objects.filter(upload=upload, status=ScanStatus.PENDING).values_list("study_id")
                   .annotate(n=Count("pk")).order_by())
    for study in studies:
        queue_analysis(study)
        events.record(study, EventKind.RECEIVED, via=via, upload=upload.pk, scans=counts.get(study.pk, 0))
        events.record(study, EventKind.QUEUED, lane=events.lane_of(study), scans=pending.get(study.pk, 0))
    return upload, studies, accepted


def _not_stored_yet(items: list[PreparedItem], rejected: list[Rejection]) -> list[PreparedItem]:
    """The items whose content and DICOM instance are new; the others join ``rejected``."""
    stored_sha = dict(Scan.objects.filter(sha256__in={i.sha256 for i in items})
                      .values_list("sha256", "study_id"))
    stored_sop = dict(Scan.objects.filter(sop_instance_uid__in={i.sop_instance_uid for i in items} - {""})
                      .values_list("sop_instance_uid", "study_id"))
    fresh = []
    for item in items:
        if item.sha256 in stored_sha:
            rejected.append(Rejection(item.name, f"duplicate: the same file is already in study {stored_sha[item.sha256]}"))
        elif item.sop_instance_uid in stored_sop:
            rejected.append(Rejection(item.name, "duplicate: this DICOM instance (SOP Instance UID) is already in "
                                                 f"study {stored_sop[item.sop_instance_uid]}"))
        else:
            fresh.append(item)
    return fresh


# --- writing ------------------------------------------------------------------------------


def _store(upload, user, prepared: list[PreparedItem], rejected: list[Rejection], model: str,
           lane=priority_for_upload):
    patients: dict[str, Patient] = {}
    studies: dict[str, Study] = {}
    refused: dict[str, str] = {}
    series_by_key: dict[str, Series] = {}
    decisions = decide_upload(prepared)
    next_instance: dict[int, int] = {}
    scans: list[Scan] = []
    accepted = 0
    for item in prepared:
        if item.study_key in refused:
            rejected.append(Rejection(item.name, refused[item.study_key]))
            continue
        patient = patients.get(item.patient["patient_id"]) or _patient_row(item.patient)
        patients[patient.patient_id] = patient
        study = studies.get(item.study_key)
        if study is None:
            study, problem = _study_row(item, patient, user, model, lane)
            if problem:
                refused[item.study_key] = problem
                rejected.append(Rejection(item.name, problem))
                continue
            studies[item.study_key] = study
        series = series_by_key.get(item.series_key) or _series_row(item, study, *decisions[item.series_key])
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
    for series in series_by_key.values():  # kept, never queued: the reason goes with each scan
        if not series.analysed:
            move_scans(Scan.objects.filter(series=series, status=ScanStatus.PENDING), ScanStatus.SKIPPED,
                       skip_reason=series.decision_reason)
        elif series.facts.get("step", 1) > 1:
            _sample(series, series.facts["step"])
    for study in studies.values():
        open_report(study)  # a new study's first version
        if study.status != StudyStatus.ANALYZING:
            reopen_study(study)
    return list(studies.values()), accepted


def _sample(series: Series, step: int) -> None:
    """A thin 3D volume: only every step-th slice (in instance order) goes to the model."""
    ordered = series.scans.order_by("instance_number", "frame_index", "id").values_list("pk", flat=True)
    between = [pk for i, pk in enumerate(ordered) if i % step != step // 2]
    move_scans(Scan.objects.filter(pk__in=between, status=ScanStatus.PENDING), ScanStatus.SKIPPED,
               skip_reason=f"between the sampled slices of a 3D volume (every {step}th slice is analysed)")


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


def _study_row(item: PreparedItem, patient: Patient, user, model: str,
               lane=priority_for_upload) -> tuple[Study | None, str | None]:
    uid = item.study["uid"]
    if uid:
        existing = Study.objects.select_for_update().filter(study_instance_uid=uid).first()
        if existing is not None:
            if existing.patient_id != patient.pk:
                return None, f"study {existing.pk} with this Study Instance UID belongs to another patient"
            report = existing.report
            if report is not None and report.is_signed:
                return None, f"study {existing.pk} is already signed; new images need a new study"
            return existing, None
    study = Study.objects.create(
        patient=patient,
        study_instance_uid=uid or _new_uid(),
        study_date=item.study["date"],
        description=item.study["description"][:200],
        modality=item.study["modality"][:16],
        requested_model=model,
        priority=lane(description=item.study["description"]),
        uploaded_by=user if user and user.is_authenticated else None,
    )
    return study, None


def _series_row(item: PreparedItem, study: Study, facts, decision) -> Series:
    """The series row, with the series rules' decision (recorded again when new images arrive)."""
    series, _ = Series.objects.get_or_create(
        study=study,
        series_instance_uid=item.series["uid"] or _new_uid(),
        defaults={"description": item.series["description"][:200], "number": item.series["number"],
                  "modality": item.series["modality"][:16]},
    )
    series.analysed, series.decision = decision.analysed, decision.code
    series.decision_reason, series.facts = decision.reason[:300], {**facts.as_dict(), "step": decision.step}
    series.save(update_fields=["analysed", "decision", "decision_reason", "facts"])
    return series


def _save_source(item: PreparedItem) -> str:
    ext = ".dcm" if item.is_dicom else {"JPEG": ".jpg", "PNG": ".png"}.get(item.frames[0].meta.get("format"), ".img")
    name = f"sources/{item.sha256[:2]}/{item.sha256}{ext}"
    return _save_whole(name, item.data)


def _save_whole(name: str, data: bytes) -> str:
    """Save under a content-addressed ``name`` unless it is there already. A write that
    fails leaves no half file behind: a later upload of the same content would take a
    file that exists for a complete one."""
    if default_storage.exists(name):
        return name
    try:
        return default_storage.save(name, ContentFile(data))
    except OSError:
        try:
            if default_storage.exists(name):
                default_storage.delete(name)
        except OSError:
            logger.error("a half-written media file could not be removed: %s", name)
        raise


def _scan_row(upload, study, series, item: PreparedItem, index: int, frame, source_name: str, number) -> Scan:
    meta = frame.meta
    preview = f"previews/{item.sha256[:2]}/{item.sha256}-{index}.png"
    preview = _save_whole(preview, grey_png(frame.pixels)) if not default_storage.exists(preview) else preview
    orientation = meta.get("image_orientation_patient")
    return Scan(
        study=study, series=series, upload=upload, source=source_name, image=preview,
        original_name=item.name[:255], sha256=item.sha256, frame_index=index,
        sop_instance_uid=(meta.get("sop_instance_uid") or item.frames[0].meta.get("sop_instance_uid") or "")[:64],
        instance_number=number, rows=int(frame.pixels.shape[0]), columns=int(frame.pixels.shape[1]),
        orientation=[float(v) for v in orientation] if orientation is not None else None,
    )


def _new_uid() -> str:
    """A DICOM UID from a UUID (the 2.25 root, PS3.5 B.2) for images that carry none."""
    return f"2.25.{uuid.uuid4().int}"
