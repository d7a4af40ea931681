"""Reads: every query the portal, the API and the admin share.

Writes never happen here (see scans.services).
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db.models import Case, IntegerField, Prefetch, Q, QuerySet, Value, When
from django.utils import timezone

from scans.models import (
    STUDY_PROGRESS_ANNOTATIONS, Analysis, Report, ReportStatus, Scan, Study, TUMOUR_LABELS, Upload,
)


def _since(value) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value if timezone.is_aware(value) else timezone.make_aware(value)
    if isinstance(value, date):
        return timezone.make_aware(datetime.combine(value, time.min))
    raise TypeError("since must be a date or datetime")


def reports(*, status=None, label=None, patient_id=None, since=None, current_only: bool = True) -> QuerySet[Report]:
    """Reports with their study and patient, newest first, filtered as the API allows."""
    qs = Report.objects.select_related("study", "study__patient", "signed_by", "reviewed_by")
    if current_only:
        qs = qs.current()
    if status:
        qs = qs.filter(status__in=[status] if isinstance(status, str) else status)
    if label:
        qs = qs.filter(label__in=[label] if isinstance(label, str) else label)
    if patient_id:
        qs = qs.filter(study__patient__patient_id=patient_id)
    if since not in (None, ""):
        qs = qs.filter(created_at__gte=_since(since))
    return qs.order_by("-created_at", "-id")


def worklist(*, status=None, label=None, patient_id=None, since=None, until: date | None = None,
             q: str | None = None) -> QuerySet[Report]:
    """The radiologist's queue: AI-positive first, then low-confidence or rejected images,
    then the rest; oldest first within each group (first come, first read).

    ``status`` defaults to reports still to be read (processing or awaiting review).
    ``until`` keeps reports created on or before that day (local time).
    ``q`` matches the patient id or name, or the study description.
    """
    if status is None:
        status = [ReportStatus.AWAITING_REVIEW, ReportStatus.PROCESSING]
    qs = reports(status=status, label=label, patient_id=patient_id, since=since)
    if until:
        qs = qs.filter(created_at__lt=_since(until + timedelta(days=1)))
    if q:
        qs = qs.filter(Q(study__patient__patient_id__icontains=q) | Q(study__patient__name__icontains=q)
                       | Q(study__description__icontains=q))
    low = settings.BRAINAI_LOW_CONFIDENCE
    priority = Case(
        When(label__in=TUMOUR_LABELS, then=Value(0)),
        # indeterminate: the evidence did not agree (or nothing could be analysed): a person reads it next.
        When(Q(confidence__lt=low) | Q(label__in=["not_brain_mri", "indeterminate"]), then=Value(1)),
        When(label="", then=Value(3)),  # still processing
        default=Value(2),
        output_field=IntegerField(),
    )
    return qs.annotate(priority=priority).order_by("priority", "created_at", "id")


def report_detail(report_id: int) -> Report:
    """One report with everything its page or API answer shows, in a few queries.

    Raises Report.DoesNotExist.
    """
    scans = Prefetch("study__scans", queryset=Scan.objects.select_related("analysis").order_by(
        "series_id", "instance_number", "frame_index", "id"))
    return (Report.objects.select_related("study", "study__patient", "key_scan", "signed_by", "reviewed_by", "previous")
            .prefetch_related(scans).get(pk=report_id))


# Fields the API's report detail never shows; not loading them keeps a 200-slice report fast.
_API_DEFERRED = ("analysis__guard", "analysis__timings", "analysis__region",
                 "orientation", "original_name", "sha256", "sop_instance_uid", "source")


def report_for_api(report_id: int) -> Report:
    """report_detail, minus the per-slice fields the API does not return. Raises Report.DoesNotExist."""
    scans = Prefetch("study__scans", queryset=Scan.objects.select_related("analysis").defer(*_API_DEFERRED)
                     .order_by("series_id", "instance_number", "frame_index", "id"))
    return (Report.objects.select_related("study", "study__patient", "signed_by", "reviewed_by")
            .prefetch_related(scans).get(pk=report_id))


def report_versions(report: Report) -> QuerySet[Report]:
    return Report.objects.filter(study_id=report.study_id).order_by("-version")


def studies() -> QuerySet[Study]:
    """Studies with patient and scan counts (Study.progress then needs no query)."""
    return (Study.objects.select_related("patient").annotate(**STUDY_PROGRESS_ANNOTATIONS)
            .order_by("-created_at", "-id"))


def dicomweb_studies(*, patient_id: str | None = None, study_uid: str | None = None) -> QuerySet[Study]:
    """The studies a QIDO-RS search matches (exact PatientID / StudyInstanceUID), with the
    counts its answer carries (``n_series``, ``n_instances``)."""
    from django.db.models import Count

    rows = Study.objects.select_related("patient").annotate(
        n_series=Count("series", distinct=True), n_instances=Count("scans__sop_instance_uid", distinct=True))
    if patient_id:
        rows = rows.filter(patient__patient_id=patient_id)
    if study_uid:
        rows = rows.filter(study_instance_uid=study_uid)
    return rows.order_by("-created_at", "-id")


def study_detail(study_id: int) -> Study:
    """Raises Study.DoesNotExist."""
    scans = Prefetch("scans", queryset=Scan.objects.select_related("analysis", "series").order_by(
        "series_id", "instance_number", "frame_index", "id"))
    return studies().prefetch_related(scans, "series").get(pk=study_id)


def upload_detail(upload_id: int) -> Upload:
    return Upload.objects.get(pk=upload_id)


def studies_of_upload(upload: Upload) -> QuerySet[Study]:
    return Study.objects.filter(scans__upload=upload).distinct().order_by("id")


def analyses_for_study(study_id: int) -> QuerySet[Analysis]:
    return Analysis.objects.filter(scan__study_id=study_id).select_related("scan")
