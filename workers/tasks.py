"""Celery tasks. Each takes ids, fetches fresh rows and is safe to run twice.

    analyze_study (queue gpu) -> explain_report (queue llm) -> finalize_report (default)
                              -> analyze_detail (queue gpu, low priority): saliency + faithfulness
    send_results (queue outbound): the SR and overlays to a PACS (scans.services.delivery)
    send_notification (queue outbound): a webhook or an e-mail (scans.services.notifications)

Each step is queued by a scans.services verb on commit. Delivery is at-least-once
(acks_late + reject_on_worker_lost); the attempts counters in the database stop a poison
input from being redelivered for ever.
"""
from __future__ import annotations

import json
import logging

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_process_init, worker_ready
from django.conf import settings
from django.db import InterfaceError, OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError

from ml.errors import ModelNotFoundError
from ml.timing import StageTimer
from scans import services
from scans.models import DeliveryStatus, EventKind, Study, Via
from scans.services import events
from workers import findings, pipeline, runtime

logger = logging.getLogger(__name__)

# Worth retrying with backoff: the database or broker blinked.
TRANSIENT = (OperationalError, InterfaceError, RedisConnectionError, ConnectionError, TimeoutError)

_COMMON = {"acks_late": True, "reject_on_worker_lost": True, "autoretry_for": TRANSIENT,
           "retry_backoff": 2, "retry_backoff_max": 120, "retry_jitter": True,
           "max_retries": settings.BRAINAI_TASK_RETRIES}


class StudyTask(Task):
    """When the analysis task gives up for good, the study is failed with the reason;
    unless the database or the broker was still away after the retries (``TRANSIENT``):
    the study's scans are still pending in the database, so the study stays ``analyzing``
    and the periodic sweep (or a worker's start) sends it again once they are back."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        if isinstance(exc, TRANSIENT):
            logger.warning("study %s: analysis stopped on %s after its retries; left pending for the sweep",
                           args[0] if args else "?", type(exc).__name__)
            return
        study = Study.objects.filter(pk=args[0]).first() if args else None
        if study is not None:
            try:
                services.mark_failed(study, None, f"analysis stopped: {type(exc).__name__}: {exc}"[:500],
                                     via=Via.WORKER)
            except services.ServiceError:
                pass  # signed meanwhile: nothing to fail


@shared_task(bind=True, base=StudyTask, name="workers.tasks.analyze_study",
             soft_time_limit=settings.BRAINAI_ANALYSIS_SOFT_LIMIT_S,
             time_limit=settings.BRAINAI_ANALYSIS_SOFT_LIMIT_S + 120, **_COMMON)
def analyze_study(self, study_id: int) -> dict:
    """Analyse every pending scan of a study, batch by batch, then set the finding."""
    requested = Study.objects.filter(pk=study_id).values_list("requested_model", flat=True).first()
    if requested is None:
        return {"study": study_id, "skipped": "no such study"}
    try:
        analyzer = runtime.analyzer(requested or None)  # "" = the configured default
    except ModelNotFoundError as exc:
        which = f"requested model {requested!r}" if requested else "the default model"
        services.mark_failed(Study.objects.get(pk=study_id), None, f"model unavailable ({which}): {exc}",
                             via=Via.WORKER)
        return {"study": study_id, "failed": "model unavailable"}
    done, seconds = 0, StageTimer(db=0.0)
    worker = self.request.hostname or events.hostname()
    try:
        while True:
            with seconds.stage("db"):
                # Research outside its hours, or urgent work waiting behind this study: stop
                # here (put back in its lane, or held for the sweep), nothing claimed.
                paused = services.pause_point(study_id, worker=worker)
                if paused:
                    return {"study": study_id, "analyzed": done, "paused": paused}
                scans = services.claim_batch(study_id, settings.BRAINAI_BATCH_SIZE, settings.BRAINAI_MAX_ATTEMPTS,
                                             worker=worker)
            if not scans:
                break
            outcome = pipeline.run_batch(analyzer, scans)
            with seconds.stage("db"):  # includes writing the PNG files
                stored = services.record_analyses(outcome.results, model_name=analyzer.name,
                                                  model_version=analyzer.version)
                done += stored
                for scan_id, reason in outcome.errors.items():
                    services.record_scan_error(scan_id, reason, final=True)
                services.record_skipped(outcome.skipped)
            seconds.add(outcome.seconds)
            events.record(study_id, EventKind.BATCH, worker=worker, scans=len(scans), analysed=stored,
                          failed=len(outcome.errors), skipped=len(outcome.skipped),
                          seconds=sum(outcome.seconds.values()))
    except SoftTimeLimitExceeded:
        # Finished batches are committed; a fresh run carries on with what is left.
        raise self.retry(countdown=1, max_retries=settings.BRAINAI_MAX_ATTEMPTS)
    with seconds.stage("db"):
        services.complete_analysis(study_id)
    logger.info("study %s: %d scans analysed; stages %s", study_id, done,
                json.dumps({k: round(v, 4) for k, v in seconds.items()}))
    return {"study": study_id, "analyzed": done, "seconds": dict(seconds)}


@shared_task(bind=True, name="workers.tasks.analyze_detail",
             soft_time_limit=settings.BRAINAI_ANALYSIS_SOFT_LIMIT_S,
             time_limit=settings.BRAINAI_ANALYSIS_SOFT_LIMIT_S + 120, **_COMMON)
def analyze_detail(self, study_id: int, scan_ids: list[int]) -> dict:
    """Saliency and the faithfulness check for analysed scans that lack them, with the
    model that analysed them (queued at low priority by scans.services.detail)."""
    scans = services.pending_detail(study_id, scan_ids)
    stored, seconds = 0, StageTimer(db=0.0)
    by_model: dict[tuple[str, str], list] = {}
    for scan in scans:
        by_model.setdefault((scan.analysis.model_name, scan.analysis.model_version), []).append(scan)
    for (name, version), group in by_model.items():
        try:
            analyzer = runtime.analyzer(name)
        except ModelNotFoundError:
            logger.warning("study %s: detail skipped, model %s is gone", study_id, name)
            continue
        if analyzer.version != version:  # the weights changed since: their maps would not match
            continue
        for start in range(0, len(group), settings.BRAINAI_BATCH_SIZE):
            details, batch_seconds = pipeline.run_detail(analyzer, group[start:start + settings.BRAINAI_BATCH_SIZE])
            seconds.add(batch_seconds)
            with seconds.stage("db"):
                stored += sum(services.record_detail(d.scan_id, model_version=version, saliency_png=d.saliency_png,
                                                     faithfulness=d.faithfulness) for d in details)
    logger.info("study %s: detail for %d scans; stages %s", study_id, stored,
                json.dumps({k: round(v, 4) for k, v in seconds.items()}))
    return {"study": study_id, "detailed": stored, "seconds": dict(seconds)}


@shared_task(bind=True, name="workers.tasks.explain_report",
             soft_time_limit=settings.BRAINAI_LLM_SOFT_LIMIT_S,
             time_limit=settings.BRAINAI_LLM_SOFT_LIMIT_S + 30, **_COMMON)
def explain_report(self, report_id: int) -> dict:
    """Write the explanation of a report's finding (never blocks the report for good)."""
    from llm import Explanation, LLMConfig, explain

    report = services.explanation_due(report_id)
    if report is None:
        return {"report": report_id, "skipped": "nothing to explain"}
    requested_at = report.explanation_requested_at
    attempts = services.count_explanation_attempt(report_id)
    config = runtime.llm_config()
    if attempts > settings.BRAINAI_MAX_ATTEMPTS:
        config = LLMConfig(provider="template")  # the LLM path kept failing: the offline text
    try:
        finding = findings.study_finding(report)
    except ValueError as exc:  # stored results llm.StudyFinding refuses: say so, never hold the report back
        logger.error("report %s: finding not explainable: %s", report_id, exc)
        explanation = Explanation(
            text="No explanation could be written for this finding; review the images directly. "
                 "AI-generated decision support; requires review by a radiologist; not a diagnosis.",
            provider="none", model="", prompt_version="", latency_ms=0, fallback_reason=f"invalid finding: {exc}")
        services.record_explanation(report_id, explanation, requested_at=requested_at)
        return {"report": report_id, "provider": "none"}
    overlay = findings.key_overlay_png(report) if config.send_images else None
    explanation = explain(finding, config, overlay_png=overlay)
    services.record_explanation(report_id, explanation, requested_at=requested_at)
    return {"report": report_id, "provider": explanation.provider, "ms": explanation.latency_ms}


@shared_task(bind=True, name="workers.tasks.finalize_report", **_COMMON)
def finalize_report(self, report_id: int) -> dict:
    """processing -> awaiting_review."""
    report = services.finalize_report(report_id)
    return {"report": report_id, "finalized": report is not None}


@shared_task(name="workers.tasks.sweep_stalled", ignore_result=True)
def sweep_stalled() -> dict | None:
    """Celery beat's periodic sweep: send again what the database says is waiting and
    the broker lost (restart, FLUSHALL, a send that failed). One sweeper at a time."""
    counts = services.sweep()
    if counts and any(v for k, v in counts.items() if k != "present"):
        logger.warning("sweep requeued lost work: %s", counts)
    return counts


@shared_task(bind=True, name="workers.tasks.send_results", soft_time_limit=600, time_limit=660, **_COMMON)
def send_results(self, delivery_id: int) -> dict:
    """One attempt to send a report version's SR (and overlays) to one destination; tried
    again later while attempts remain (counted in the database, per study and destination)."""
    delivery = services.send_delivery(delivery_id)
    if delivery is None:
        return {"delivery": delivery_id, "skipped": "nothing to send"}
    if delivery.status == DeliveryStatus.PENDING:
        raise self.retry(countdown=services.retry_delay(delivery), max_retries=None)
    return {"delivery": delivery_id, "status": delivery.status, "attempts": delivery.attempts}


@worker_process_init.connect
def _warm_up_llm_client(sender=None, **kwargs):
    """Import the configured LLM client library in each pool process before its first
    task: the import takes up to a few seconds, which would otherwise come out of the
    first explanation's time budget. The template provider imports nothing."""
    from llm import warm_up

    warm_up(runtime.llm_config())


@worker_ready.connect
def _requeue_on_start(sender=None, **kwargs):
    """Work left behind while no worker (or no broker) was up is sent again."""
    try:
        counts = services.requeue_stalled()
    except (OperationalError, InterfaceError) as exc:
        logger.warning("could not look for stalled work: %s", type(exc).__name__)
        return
    if any(counts.values()):
        logger.info("requeued stalled work: %s", counts)


@shared_task(bind=True, name="workers.tasks.send_notification", soft_time_limit=120, time_limit=150, **_COMMON)
def send_notification(self, notification_id: int) -> dict:
    """One attempt to send a webhook or an e-mail (scans.services.notifications); tried again
    after its backoff while attempts remain (counted in the database, per notification)."""
    from scans.models import NotificationStatus
    from scans.services.notifications import retry_delay

    notification = services.send_notification(notification_id)
    if notification is None:
        return {"notification": notification_id, "skipped": "nothing to send"}
    if notification.status == NotificationStatus.PENDING:
        raise self.retry(countdown=retry_delay(notification), max_retries=None)
    return {"notification": notification_id, "status": notification.status, "attempts": notification.attempts}
