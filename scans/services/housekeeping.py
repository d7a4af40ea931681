"""Sending again what is waiting but not queued (broker was down, worker was lost)."""
from __future__ import annotations

from django.db.models import F, Q

from scans.models import Report, ReportStatus, ScanStatus, Study, StudyStatus
from scans.services.queue import ANALYZE_STUDY, EXPLAIN_REPORT, FINALIZE_REPORT, send_now


def requeue_stalled() -> dict[str, int]:
    """Queue every study, explanation and finalisation still waiting.

    Safe to run any time: the tasks are idempotent, so a duplicate costs one no-op.
    """
    counts = {"analyze": 0, "explain": 0, "finalize": 0}
    studies = Study.objects.filter(status=StudyStatus.ANALYZING, scans__status=ScanStatus.PENDING).distinct()
    for study_id in studies.values_list("pk", flat=True):
        counts["analyze"] += send_now(ANALYZE_STUDY, study_id)
    # Studies whose scans are all done but whose finding was never set (lost message).
    for study_id in Study.objects.filter(status=StudyStatus.ANALYZING).exclude(
            scans__status=ScanStatus.PENDING).values_list("pk", flat=True):
        counts["analyze"] += send_now(ANALYZE_STUDY, study_id)
    waiting = Report.objects.current().exclude(
        status__in=[ReportStatus.SIGNED, ReportStatus.AMENDED, ReportStatus.FAILED])
    for report_id in waiting.filter(explanation_requested_at__isnull=False).filter(
            Q(explanation_generated_at__isnull=True) | Q(explanation_generated_at__lt=F("explanation_requested_at"))
    ).values_list("pk", flat=True):
        counts["explain"] += send_now(EXPLAIN_REPORT, report_id)
    for report_id in waiting.filter(status=ReportStatus.PROCESSING, explanation_generated_at__isnull=False).exclude(
            label="").values_list("pk", flat=True):
        counts["finalize"] += send_now(FINALIZE_REPORT, report_id)
    return counts
