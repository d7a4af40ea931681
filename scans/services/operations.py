"""An operator's actions on the queue (issue #20): retry a failed scan or study, cancel
what is left to analyse. Changing a study's priority is scans.services.priority.set_priority.

    retry_study(study, *, user, via)   failed study: a re-run (analysis.rerun_locked); else
                                       its failed scans back to pending and queued; a study in
                                       flight with nothing failed: its current step sent again
    retry_scan(scan, *, user, via)     one failed scan back to pending, the study reopened
    cancel_study(study, *, user, via)  pending scans -> skipped ("cancelled by an operator");
                                       the study finalises from what is done, or fails

Each is for operators and admins (scans.permissions.OPERATE), refused for a signed study,
audited (AuditAction.RETRY_STUDY / CANCEL_STUDY) and logged as an OPERATOR pipeline event.
"""
from __future__ import annotations

from django.db import transaction

from scans import permissions
from scans.models import AuditAction, EventKind, Scan, ScanStatus, Study, StudyStatus, Via
from scans.services import events, state
from scans.services.analysis import complete_analysis, open_report, reopen_study, rerun_locked, _fail_study
from scans.services.audit import audit
from scans.services.errors import InvalidState
from scans.services.priority import queue_analysis
from scans.services.queue import EXPLAIN_REPORT, FINALIZE_REPORT, enqueue

CANCEL_REASON = "cancelled by an operator"


def _locked_study(study_id: int) -> tuple[Study, object]:
    """The study (row-locked) and its current report; InvalidState when it is signed."""
    study = Study.objects.select_for_update().get(pk=study_id)
    report = open_report(study)
    if report.is_signed:
        raise InvalidState(f"study {study.pk} is signed; its record is closed (amend the report instead)")
    return study, report


def _requeue_failed(study: Study, scans) -> int:
    """Failed ``scans`` (of analysed series) back to pending with their analysis cleared, the
    study reopened when it had moved on, its analysis queued; how many scans moved."""
    moved = state.move_scans(scans.filter(status=ScanStatus.FAILED, series__analysed=True), ScanStatus.PENDING,
                             **Scan.cleared_analysis())
    if not moved:
        return 0
    if study.status != StudyStatus.ANALYZING:
        reopen_study(study)  # the report back to processing, its AI result cleared
    state.sync_study_status(study)
    queue_analysis(study)  # to its lane, on commit
    events.record(study, EventKind.QUEUED, lane=events.lane_of(study), scans=moved, reason="retry")
    return moved


def _resend_step(study: Study, report) -> str:
    """Send again the task a study in flight waits for; the step's name ("" when none)."""
    if study.status == StudyStatus.ANALYZING:
        queue_analysis(study)  # to its lane, on commit
        events.record(study, EventKind.QUEUED, lane=events.lane_of(study), reason="retry")
        return "analyze"
    if study.status == StudyStatus.EXPLAINING:
        if report.explanation_pending:
            enqueue(EXPLAIN_REPORT, report.pk)
            return "explain"
        enqueue(FINALIZE_REPORT, report.pk)
        return "finalize"
    return ""


def retry_study(study: Study, *, user, via: Via = Via.PORTAL) -> Study:
    """Retry what went wrong with a study.

    A failed study is re-run (every analysed series again). Otherwise its failed scans go
    back to pending and are queued; a study still in flight with nothing failed (stuck)
    has the task of its current step sent again (the tasks are idempotent).

    Raises:
        PermissionDenied: not an operator or admin.
        InvalidState: signed, or nothing to retry (awaiting review, nothing failed).
    """
    permissions.OPERATE.require(user, "retry a study")
    with transaction.atomic():
        study, report = _locked_study(study.pk)
        if study.status == StudyStatus.FAILED:
            scans, action = rerun_locked(study), "rerun"
        else:
            scans, action = _requeue_failed(study, study.scans.all()), "retry"
            if not scans:
                action = _resend_step(study, report)
                if not action:
                    raise InvalidState(f"study {study.pk} has nothing to retry: no failed scan, nothing in flight")
                action = f"resend {action}"
        audit(AuditAction.RETRY_STUDY, user, via=via, study=study, scans=scans, step=action)
        events.record(study, EventKind.OPERATOR, action=action, scans=scans, via=via)
    return study


def retry_scan(scan: Scan, *, user, via: Via = Via.PORTAL) -> Scan:
    """One failed scan back to pending and queued; a study that had moved on (failed, or
    finalised without it) is reopened.

    Raises:
        PermissionDenied: not an operator or admin.
        InvalidState: signed, or the scan is not failed (or its series is not analysed).
    """
    permissions.OPERATE.require(user, "retry a scan")
    with transaction.atomic():
        study, _ = _locked_study(scan.study_id)
        if not _requeue_failed(study, Scan.objects.filter(pk=scan.pk)):
            raise InvalidState(f"scan {scan.pk} is not a failed scan of an analysed series; nothing to retry")
        audit(AuditAction.RETRY_STUDY, user, via=via, study=study, scan=scan.pk, scans=1, step="retry scan")
        events.record(study, EventKind.OPERATOR, action="retry scan", scan=scan.pk, scans=1, via=via)
    scan.refresh_from_db()
    return scan


def cancel_study(study: Study, *, user, via: Via = Via.PORTAL) -> Study:
    """Stop analysing a study: its pending scans are skipped ("cancelled by an operator").
    The study then finalises from the scans already analysed, or fails with that reason
    when none is. A batch a worker holds meanwhile is not stored (only pending scans are).

    Raises:
        PermissionDenied: not an operator or admin.
        InvalidState: signed, or no scan is waiting to be analysed.
    """
    permissions.OPERATE.require(user, "cancel a study")
    with transaction.atomic():
        study, report = _locked_study(study.pk)
        cancelled = state.move_scans(study.scans.filter(status=ScanStatus.PENDING), ScanStatus.SKIPPED,
                                     skip_reason=CANCEL_REASON)
        if not cancelled:
            raise InvalidState(f"study {study.pk} has no scan waiting to be analysed; nothing to cancel")
        audit(AuditAction.CANCEL_STUDY, user, via=via, study=study, scans=cancelled)
        events.record(study, EventKind.OPERATOR, action="cancel", scans=cancelled, via=via)
        if study.scans.filter(status=ScanStatus.ANALYZED).exists():
            complete_analysis(study.pk)  # the finding from what is done; the explanation queued
        else:
            _fail_study(study, report, CANCEL_REASON)
    study.refresh_from_db()
    return study
