"""Sending again what is waiting but not queued (broker was down or flushed, worker was lost).

``requeue_stalled`` runs when a worker starts and, through ``sweep``, every
``BRAINAI_SWEEP_INTERVAL_S`` from celery beat (workers.tasks.sweep_stalled). It reads the
database for work that should be moving, and the broker for what is already there, and
sends only what is missing. A task sent twice costs one no-op (the tasks are idempotent).
"""
from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from scans.models import (
    Analysis, Delivery, DeliveryStatus, Notification, NotificationStatus, Report, ReportStatus, ScanStatus, Study,
    StudyStatus,
)
from scans.services.queue import (
    ANALYZE_DETAIL, ANALYZE_STUDY, EXPLAIN_REPORT, FINALIZE_REPORT, SEND_NOTIFICATION, SEND_RESULTS, broker_lock,
    in_broker, send_now,
)
from scans.services.priority import held
from scans.services.queue import lane_step

SWEEP_LOCK = "sweep"


def requeue_stalled(in_flight_for: float = 0.0, now=None) -> dict[str, int]:
    """Queue every study, explanation, finalisation and detail pass still waiting that the
    broker does not hold (``queue.in_broker(in_flight_for)``); returns how many were sent
    per kind (``analyze``, ``explain``, ``finalize`` always; ``detail``, ``present`` (how
    many were waiting but already in the broker) and ``held`` (research studies outside
    ``BRAINAI_RESEARCH_HOURS`` at ``now``), when not 0). With the broker
    unreachable every send is tried, and each failure is logged.

    Safe to run any time: the tasks are idempotent, so a duplicate costs one no-op.
    """
    present = in_broker(in_flight_for) or set()
    counts = {"analyze": 0, "explain": 0, "finalize": 0, "detail": 0, "deliver": 0, "notify": 0, "present": 0,
              "held": 0}

    def send(kind, task, obj_id, *args, priority=None):
        if (task, obj_id) in present:
            counts["present"] += 1
        else:
            counts[kind] += send_now(task, obj_id, *args, priority=priority)

    # Pending scans, or all scans done but the finding never set (lost message): each to its
    # lane (scans.services.priority); research outside BRAINAI_RESEARCH_HOURS stays held
    # (counted as "held") and goes once the window opens.
    for study_id, priority in Study.objects.filter(status=StudyStatus.ANALYZING).values_list("pk", "priority"):
        if held(priority, now):
            counts["held"] += 1
        else:
            send("analyze", ANALYZE_STUDY, study_id, priority=lane_step(priority))
    waiting = Report.objects.current().exclude(
        status__in=[ReportStatus.SIGNED, ReportStatus.AMENDED, ReportStatus.FAILED])
    for report_id in waiting.filter(explanation_requested_at__isnull=False).filter(
            Q(explanation_generated_at__isnull=True) | Q(explanation_generated_at__lt=F("explanation_requested_at"))
    ).values_list("pk", flat=True):
        send("explain", EXPLAIN_REPORT, report_id)
    for report_id in waiting.filter(status=ReportStatus.PROCESSING, explanation_generated_at__isnull=False).exclude(
            label="").values_list("pk", flat=True):
        send("finalize", FINALIZE_REPORT, report_id)
    for study_id, scan_ids in detail_waiting().items():
        from scans.services.detail import LOW_PRIORITY

        send("detail", ANALYZE_DETAIL, study_id, scan_ids, priority=LOW_PRIORITY)
    # Results still to send to a PACS; one that is not due yet is a no-op (send_delivery).
    for delivery_id in Delivery.objects.filter(status=DeliveryStatus.PENDING).values_list("pk", flat=True):
        send("deliver", SEND_RESULTS, delivery_id)
    # Webhooks and e-mails still to send (scans.services.notifications); not due yet = a no-op.
    for notification_id in Notification.objects.filter(status=NotificationStatus.PENDING).values_list("pk", flat=True):
        send("notify", SEND_NOTIFICATION, notification_id)
    return {k: v for k, v in counts.items() if v or k in ("analyze", "explain", "finalize")}


def detail_waiting() -> dict[int, list[int]]:
    """Study id -> the scans whose detail pass (scans.services.detail) was due and never
    came, among slices analysed in the last ``BRAINAI_DETAIL_SWEEP_WINDOW_S``. The window
    bounds the resends of a detail pass that can never run (its weights were replaced)."""
    from scans.services.detail import detail_scan_ids

    since = timezone.now() - timedelta(seconds=settings.BRAINAI_DETAIL_SWEEP_WINDOW_S)
    studies = (Analysis.objects.filter(scan__status=ScanStatus.ANALYZED, scan__analyzed_at__gte=since,
                                       faithfulness__isnull=True)
               .exclude(scan__study__status=StudyStatus.ANALYZING)
               .values_list("scan__study_id", flat=True).distinct())
    due = {}
    for study_id in studies:
        report = Report.objects.current().filter(study_id=study_id).exclude(label="").first()
        if report is None:
            continue
        analyses = list(Analysis.objects.filter(scan__study_id=study_id, scan__status=ScanStatus.ANALYZED))
        lacking = {a.scan_id for a in analyses if not a.detail_computed}
        ids = [i for i in detail_scan_ids(analyses, report) if i in lacking]
        if ids:
            due[study_id] = ids
    return due


def sweep() -> dict[str, int] | None:
    """The periodic sweep: ``requeue_stalled`` under a broker lock held for one interval,
    so two beats (or two workers running the sweep) send each missing task once.
    Tasks a worker took less than one analysis time limit ago count as in flight.
    None when another sweeper holds the lock."""
    if not broker_lock(SWEEP_LOCK, max(settings.BRAINAI_SWEEP_INTERVAL_S - 1, 1)):
        return None
    return requeue_stalled(in_flight_for=settings.BRAINAI_ANALYSIS_SOFT_LIMIT_S + 120)
