"""Analysis state changes: claiming scans for the gpu worker, storing results, the
study's AI finding, re-runs and failures."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from scans import permissions
from scans.models import (
    Analysis, AuditAction, EventKind, Label, NotifyEvent, Report, ReportStatus, Scan, ScanStatus, Study, StudyStatus,
    Via,
)
from scans.services import events, state
from scans.services.audit import audit
from scans.services.errors import InvalidState
from scans.services.finding import decide_study
from scans.services.notifications import notify
from scans.services.priority import queue_analysis
from scans.services.queue import EXPLAIN_REPORT, enqueue

logger = logging.getLogger(__name__)

SCAN_ORDER = ("series_id", "instance_number", "frame_index", "id")


@dataclass
class ScanResult:
    """What the worker hands back for one scan: the ml SliceResult and rendered PNGs."""

    scan_id: int
    result: object  # ml.analysis.analyzer.SliceResult
    heatmap_png: bytes
    overlay_png: bytes
    saliency_png: bytes | None = None


def jsonable(value):
    """numpy scalars/arrays and tuples -> plain JSON types (results go into JSONFields)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist() if value.size <= 64 else f"array{list(value.shape)}"
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _locking(qs):
    """SELECT ... FOR UPDATE SKIP LOCKED where the database has it (PostgreSQL)."""
    if connection.features.has_select_for_update_skip_locked:
        return qs.select_for_update(skip_locked=True)
    return qs


def claim_batch(study_id: int, batch_size: int, max_attempts: int, *, worker: str = "") -> list[Scan]:
    """Take the next pending scans of a study, count an attempt on each and note the
    worker holding them (``worker``: its Celery hostname; empty = this host's name).

    Scans already tried ``max_attempts`` times are marked failed instead, so a poison
    image that kills the worker is given up on rather than requeued for ever.
    """
    with transaction.atomic():
        pending = Scan.objects.filter(study_id=study_id, status=ScanStatus.PENDING)
        for scan in _locking(pending.filter(attempts__gte=max_attempts)):
            _fail_scan(scan, f"gave up after {scan.attempts} attempts" + (f"; last error: {scan.error}" if scan.error else ""))
        ids = list(_locking(pending.filter(attempts__lt=max_attempts)).order_by(*SCAN_ORDER)
                   .values_list("pk", flat=True)[:batch_size])
        Scan.objects.filter(pk__in=ids).update(attempts=F("attempts") + 1,
                                               worker=(worker or events.hostname())[:200])
        return list(Scan.objects.filter(pk__in=ids).select_related("series").order_by(*SCAN_ORDER))


def _fail_scan(scan: Scan, reason: str) -> None:
    if state.move_scans(scan, ScanStatus.FAILED, error=reason[:2000]):
        events.record(scan.study_id, EventKind.FAILED, worker=scan.worker, scope="scan", scan=scan.pk,
                      attempts=scan.attempts, reason=reason)


def record_scan_error(scan_id: int, reason: str, *, final: bool) -> None:
    """A scan's analysis raised: fail it now (``final``) or keep the reason for the next try."""
    with transaction.atomic():
        scan = Scan.objects.select_for_update().filter(pk=scan_id, status=ScanStatus.PENDING).first()
        if scan is None:
            return
        if final:
            _fail_scan(scan, reason)
        else:
            scan.error = reason[:2000]
            scan.save(update_fields=["error"])


def record_analyses(results: list[ScanResult], *, model_name: str, model_version: str) -> int:
    """Store one Analysis per scan (replacing any earlier one); returns how many were stored.

    Idempotent: a scan no longer pending (already analysed, failed or re-queued) is skipped.
    """
    if not results:
        return 0
    by_id = {r.scan_id: r for r in results}
    with transaction.atomic():
        ids = list(_locking(Scan.objects.filter(pk__in=by_id, status=ScanStatus.PENDING)).values_list("pk", flat=True))
        Analysis.objects.filter(scan_id__in=ids).delete()
        rows = [_analysis_row(by_id[pk], model_name, model_version) for pk in ids]
        Analysis.objects.bulk_create(rows)
        state.move_scans(Scan.objects.filter(pk__in=ids), ScanStatus.ANALYZED, analyzed_at=timezone.now(), error="")
    return len(rows)


def _save_png(folder: str, scan_id: int, data: bytes | None) -> str:
    if not data:
        return ""
    name = f"{folder}/{scan_id % 1000:03d}/{scan_id}.png"
    if default_storage.exists(name):
        default_storage.delete(name)
    return default_storage.save(name, ContentFile(data))


def _analysis_row(item: ScanResult, model_name: str, model_version: str) -> Analysis:
    r = item.result
    return Analysis(
        scan_id=item.scan_id,
        model_name=model_name,
        model_version=str(model_version),
        label=str(r.label),
        probabilities=jsonable(dict(r.probabilities)),
        confidence=float(r.confidence),
        in_distribution=bool(r.in_distribution),
        guard=jsonable(getattr(r, "guard", None) or {}),
        region=jsonable(getattr(r, "region", None) or {}),
        faithfulness=jsonable(getattr(r, "faithfulness", None)),
        timings=jsonable(getattr(r, "timings", None) or {}),
        heatmap=_save_png("heatmaps", item.scan_id, item.heatmap_png),
        overlay=_save_png("overlays", item.scan_id, item.overlay_png),
        saliency=_save_png("saliency", item.scan_id, item.saliency_png),
    )


def study_finding(analyses: list[Analysis]) -> Analysis | None:
    """The slice that decides the study's AI finding.

    Among in-distribution slices, the one the model finds least likely to be tumour-free
    (lowest calibrated p(notumor)); if the guard rejected every slice, the most
    confident rejection (the study is then ``not_brain_mri``).
    """
    in_dist = [a for a in analyses if a.in_distribution and a.label != Label.NOT_BRAIN_MRI]
    if in_dist:
        return min(in_dist, key=lambda a: (float(a.probabilities.get(Label.NOTUMOR, 0.0)), -a.confidence, a.scan_id))
    if analyses:
        return max(analyses, key=lambda a: (a.confidence, -a.scan_id))
    return None


def complete_analysis(study_id: int) -> Report | None:
    """When no scan is pending: set the report's AI finding and queue the explanation.

    Returns the report when this call moved it on; None when there is nothing to do
    (scans still pending, or another call already did it).
    """
    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=study_id)
        if study.status != StudyStatus.ANALYZING:
            return None
        if study.scans.filter(status=ScanStatus.PENDING).exists():
            return None
        report = open_report(study)
        analyses = list(Analysis.objects.filter(scan__study=study, scan__status=ScanStatus.ANALYZED)
                        .select_related("scan"))
        decided = decide_study(study, analyses, study_finding)
        key = decided.key
        if key is None and not decided.label:
            errors = sorted({e for e in study.scans.values_list("error", flat=True) if e})
            _fail_study(study, report, "no image could be analysed" + (": " + "; ".join(errors[:3]) if errors else ""))
            audit(AuditAction.ANALYSIS_FAILED, None, via=Via.WORKER, report=report)
            return report
        report.label = decided.label
        report.confidence = decided.confidence
        report.probabilities = key.probabilities if key is not None else {}
        report.key_scan_id = key.scan_id if key is not None else None
        report.model_name, report.model_version = (key.model_name, key.model_version) if key is not None else ("", "")
        report.rules_version, report.evidence, report.not_analysed = (decided.rules_version, decided.evidence,
                                                                     decided.not_analysed)
        report.explanation_requested_at = timezone.now()
        report.save()
        state.sync_study_status(study, report)  # -> explaining
        enqueue(EXPLAIN_REPORT, report.pk)
        # Imported here: scans.services.detail reuses this module's PNG and JSON helpers.
        from scans.services.detail import detail_scan_ids, queue_detail

        queue_detail(study.pk, detail_scan_ids(analyses, report))  # low priority; never holds the report
        return report


def _fail_study(study: Study, report: Report, reason: str) -> None:
    failed = state.move_scans(study.scans.filter(status=ScanStatus.PENDING), ScanStatus.FAILED, error=reason[:2000])
    report.failure_reason = reason[:2000]
    state.move_report(report, ReportStatus.FAILED, also=["failure_reason"])
    events.record(study, EventKind.FAILED, scope="study", report=report.pk, scans=failed, reason=reason)
    notify(study, NotifyEvent.FAILED, report)  # webhooks and e-mails (scans.services.notifications)


def open_report(study: Study) -> Report:
    """The study's current report, locked; version 1 is created when it has none yet.

    Callers hold the study's row lock, so two calls cannot both create one.
    """
    report = study.reports.current().select_for_update().first()
    return report if report is not None else study.reports.create(version=1)


def reopen_study(study: Study) -> None:
    """Put a study back to analysing: new images arrived, or a re-run was asked for.

    The current report goes back to processing with its AI result cleared; the review
    text stays.
    """
    report = open_report(study)
    state.move_report(report, ReportStatus.PROCESSING, also=report.clear_ai_result())


def rerun_analysis(study: Study, user, *, via: Via = Via.ADMIN) -> Study:
    """Analyse every scan of a study again (e.g. after a model update or a failure)."""
    permissions.RERUN.require(user, "re-run an analysis")
    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=study.pk)
        rerun_locked(study)
        audit(AuditAction.RERUN_ANALYSIS, user, via=via, study=study)
    return study


def rerun_locked(study: Study) -> int:
    """A re-run's writes, for a study the caller holds locked inside its transaction:
    every analysed series' scans back to pending with their analysis deleted, the report
    reopened, the study queued. Returns how many scans were queued.

    Raises:
        InvalidState: the study is signed (amend instead).
    """
    if open_report(study).is_signed:
        raise InvalidState(f"study {study.pk} is signed; amend the report instead of re-running")
    old = list(Analysis.objects.filter(scan__study=study))
    Analysis.objects.filter(pk__in=[a.pk for a in old]).delete()
    transaction.on_commit(lambda: _delete_files(old))
    # Scans of a series the rules do not analyse stay skipped: they are never queued.
    queued = state.move_scans(study.scans.filter(series__analysed=True), ScanStatus.PENDING,
                              **Scan.cleared_analysis())
    reopen_study(study)
    queue_analysis(study)
    events.record(study, EventKind.QUEUED, lane=events.lane_of(study), scans=queued, reason="re-run")
    return queued


def _delete_files(analyses: list[Analysis]) -> None:
    for a in analyses:
        for f in (a.heatmap, a.overlay, a.saliency):
            if f and f.name:
                f.storage.delete(f.name)


def mark_failed(scan_or_study, user, reason: str, *, via: Via = Via.ADMIN):
    """Give up on a scan or a whole study, with a reason people will read.

    ``user`` None means the pipeline itself (after its retries ran out).
    """
    reason = (reason or "").strip() or "marked failed"
    if user is not None:
        permissions.MARK_FAILED.require(user, "mark scans or studies failed")
    if isinstance(scan_or_study, Scan):
        return _mark_scan_failed(scan_or_study, user, reason, via)
    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=scan_or_study.pk)
        report = open_report(study)
        if report.is_signed:
            raise InvalidState(f"study {study.pk} is signed; a signed report cannot be marked failed")
        _fail_study(study, report, reason)
        action = AuditAction.MARK_FAILED if user is not None else AuditAction.ANALYSIS_FAILED
        audit(action, user, via=via, study=study, report=report)
    return study


def _mark_scan_failed(scan: Scan, user, reason: str, via: Via) -> Scan:
    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=scan.study_id)  # the lock mark_failed takes too
        report = study.reports.current().first()
        if report is not None and report.is_signed:
            raise InvalidState(f"study {study.pk} is signed; its slices are part of the record")
        scan = Scan.objects.select_for_update().get(pk=scan.pk)
        _fail_scan(scan, reason)
        audit(AuditAction.MARK_FAILED, user, via=via, study=scan.study, scan=scan.pk)
    complete_analysis(scan.study_id)  # the last pending scan may just have been failed
    return scan
