"""Reads: every query the portal, the API and the admin share.

Writes never happen here (see scans.services).
"""
from __future__ import annotations

from dataclasses import dataclass
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


# --- the operator's queue view (issue #20) --------------------------------------------------

OPERATOR_STATUSES = ("analyzing", "explaining", "failed")  # in flight, or failed
OPERATOR_ROWS = 500


@dataclass
class QueueRow:
    """One study on the operator's view: ids, stages, counts and times; no patient data."""

    study_id: int
    priority: str
    status: str
    stage: str  # the status, or where the analysis stands ("analysing: 3 of 40, 1 failed")
    created_at: datetime
    last_event_at: datetime | None
    last_event: str
    attempts: int  # the most any of its scans was tried
    worker: str  # the worker holding its claimed scans, else the last one that wrote an event
    last_error: str  # scrubbed of paths, file names and UIDs (scans.services.events.scrub)
    stuck: bool  # in flight, and no event for BRAINAI_STUCK_AFTER_MIN minutes
    n_scans: int
    n_analyzed: int
    n_failed: int
    n_pending: int

    def waiting_s(self, now: datetime) -> float:
        return (now - self.created_at).total_seconds()

    def idle_s(self, now: datetime) -> float:
        return (now - (self.last_event_at or self.created_at)).total_seconds()


def operator_queue(*, now: datetime | None = None, stuck_after_min: float | None = None,
                   study_id: int | None = None) -> list[QueueRow]:
    """Every study in flight (analysing, explaining) or failed, stuck first, then oldest
    first; at most OPERATOR_ROWS. A study is stuck when it is in flight (not failed, not
    research work held outside its hours) and its last pipeline event (or its upload,
    when it has none) is older than ``stuck_after_min``
    (default BRAINAI_STUCK_AFTER_MIN). ``study_id``: that study's row only (if listed)."""
    from django.db.models import Count, IntegerField, Max, OuterRef, Subquery
    from django.db.models.functions import Coalesce

    from scans.models import PipelineEvent, ScanStatus, StudyStatus
    from scans.services.events import scrub
    from scans.services.priority import held

    now = now or timezone.now()
    threshold = timedelta(minutes=settings.BRAINAI_STUCK_AFTER_MIN if stuck_after_min is None else stuck_after_min)
    scans = Scan.objects.filter(study=OuterRef("pk"))
    last_event = PipelineEvent.objects.filter(study=OuterRef("pk")).order_by("-created_at", "-id")
    report = Report.objects.current().filter(study=OuterRef("pk"))
    rows = (Study.objects.filter(status__in=OPERATOR_STATUSES, **({"pk": study_id} if study_id else {}))
            .annotate(
                n_scans=Coalesce(Subquery(scans.order_by().values("study").annotate(n=Count("pk")).values("n")),
                                 0, output_field=IntegerField()),
                n_analyzed=Coalesce(Subquery(scans.filter(status=ScanStatus.ANALYZED).order_by().values("study")
                                             .annotate(n=Count("pk")).values("n")), 0, output_field=IntegerField()),
                n_failed=Coalesce(Subquery(scans.filter(status=ScanStatus.FAILED).order_by().values("study")
                                           .annotate(n=Count("pk")).values("n")), 0, output_field=IntegerField()),
                n_pending=Coalesce(Subquery(scans.filter(status=ScanStatus.PENDING).order_by().values("study")
                                            .annotate(n=Count("pk")).values("n")), 0, output_field=IntegerField()),
                max_attempts=Coalesce(Subquery(scans.order_by().values("study").annotate(m=Max("attempts"))
                                               .values("m")), 0, output_field=IntegerField()),
                holder=Subquery(scans.filter(status=ScanStatus.PENDING, attempts__gt=0).exclude(worker="")
                                .order_by("-attempts", "-id").values("worker")[:1]),
                event_worker=Subquery(last_event.exclude(worker="").values("worker")[:1]),
                last_event_at=Subquery(last_event.values("created_at")[:1]),
                last_event_kind=Subquery(last_event.values("kind")[:1]),
                scan_error=Subquery(scans.exclude(error="").order_by("-id").values("error")[:1]),
                failure_reason=Subquery(report.values("failure_reason")[:1]),
            )
            .order_by("created_at", "id"))[:OPERATOR_ROWS]
    out = []
    for s in rows:
        waiting = s.status == StudyStatus.ANALYZING and s.n_pending and held(s.priority, now)
        in_flight = s.status != StudyStatus.FAILED and not waiting  # held research work is not stuck
        if s.status == StudyStatus.ANALYZING:
            stage = f"analysing: {s.n_analyzed} of {s.n_scans} analysed"
            if s.n_failed:
                stage += f", {s.n_failed} failed"
            if waiting:
                stage += "; held until BRAINAI_RESEARCH_HOURS"
        else:
            stage = s.get_status_display().lower()
        error = s.failure_reason if s.status == StudyStatus.FAILED and s.failure_reason else (s.scan_error or "")
        out.append(QueueRow(
            study_id=s.pk, priority=s.priority, status=s.status, stage=stage, created_at=s.created_at,
            last_event_at=s.last_event_at, last_event=s.last_event_kind or "", attempts=s.max_attempts,
            worker=s.holder or s.event_worker or "", last_error=scrub(error) if error else "",
            stuck=in_flight and now - (s.last_event_at or s.created_at) > threshold,
            n_scans=s.n_scans, n_analyzed=s.n_analyzed, n_failed=s.n_failed, n_pending=s.n_pending,
        ))
    out.sort(key=lambda r: (not r.stuck, r.status == StudyStatus.FAILED, r.created_at))
    return out


def study_events(study_id: int):
    """A study's pipeline events, oldest first (Study.DoesNotExist when there is no study)."""
    from scans.models import PipelineEvent

    Study.objects.only("pk").get(pk=study_id)
    return PipelineEvent.objects.filter(study_id=study_id).order_by("created_at", "id")


@dataclass(frozen=True)
class InboxStudy:
    """One study in the DICOM inbox (the admin's per-study summary): UIDs and counts, no names."""

    study_instance_uid: str
    senders: tuple[str, ...]
    waiting: int
    taken_in: int
    duplicates: int
    first_received: datetime
    last_received: datetime
    due_at: datetime | None  # when its waiting instances are taken in, if nothing more arrives


def dicom_inbox_studies(limit: int = 50) -> list[InboxStudy]:
    """The ``limit`` studies most recently received over DICOM: instances waiting vs taken in.

    ``due_at`` follows BRAINAI_DICOM_GROUP_BY: the study's newest waiting instance plus the
    quiet period ("study"), or the earliest such time of its senders' parts ("ae_study").
    """
    from django.db.models import Count, Max, Min, Sum

    from scans.models import DicomInstance

    waiting_q = Q(taken_in_at__isnull=True)
    rows = list(DicomInstance.objects.values("study_instance_uid").annotate(
        waiting=Count("id", filter=waiting_q), taken_in=Count("id", filter=~waiting_q),
        duplicates=Sum("duplicates"), first=Min("received_at"), last=Max("received_at"),
        last_waiting=Max("received_at", filter=waiting_q)).order_by("-last")[:limit])
    uids = [r["study_instance_uid"] for r in rows]
    senders: dict[str, set[str]] = {}
    due: dict[str, datetime] = {}
    quiet = timedelta(seconds=settings.BRAINAI_DICOM_STUDY_QUIET_S)
    for uid, ae in DicomInstance.objects.filter(study_instance_uid__in=uids).values_list(
            "study_instance_uid", "calling_ae").distinct():
        senders.setdefault(uid, set()).add(ae)
    if settings.BRAINAI_DICOM_GROUP_BY == "ae_study":
        for part in (DicomInstance.objects.filter(waiting_q, study_instance_uid__in=uids)
                     .values("study_instance_uid", "calling_ae").annotate(last=Max("received_at"))):
            uid, at = part["study_instance_uid"], part["last"] + quiet
            due[uid] = min(due.get(uid, at), at)
    else:
        due = {r["study_instance_uid"]: r["last_waiting"] + quiet for r in rows if r["last_waiting"]}
    return [InboxStudy(study_instance_uid=uid, senders=tuple(sorted(senders.get(uid, ()))), waiting=r["waiting"],
                       taken_in=r["taken_in"], duplicates=r["duplicates"] or 0, first_received=r["first"],
                       last_received=r["last"], due_at=due.get(uid))
            for uid, r in ((r["study_instance_uid"], r) for r in rows)]
