"""Priority lanes (issue #20): which lane a study's gpu work waits in, and changing it.

A study's ``priority`` (scans.models.Priority) is decided at upload by
``priority_for_upload`` (an explicit choice, else the first matching
``BRAINAI_PRIORITY_RULES`` rule, else routine) and changed later by ``set_priority``.
Its analysis is sent by ``queue_analysis`` to the lane's Redis priority step on the gpu
queue (scans.services.queue: urgent 0, routine 3, research 6, the detail pass 9).

Research work starts only inside ``BRAINAI_RESEARCH_HOURS``: outside it the study is not
sent (``queue_analysis``), a worker that takes one puts it back untouched
(``hold_reason``), and the sweep (scans.services.housekeeping) sends it once the window
opens. Nothing is lost: the study stays ``analyzing`` with its scans pending.
"""
from __future__ import annotations

import logging
from datetime import datetime
from functools import partial

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from brainai_site.lanes import in_window, parse_hours, parse_rules
from scans import permissions
from scans.models import AuditAction, EventKind, Priority, Study, StudyStatus, Via
from scans.services import events
from scans.services.audit import audit
from scans.services.errors import InvalidState
from scans.services.queue import (
    ANALYZE_STUDY, in_broker, lane_step, send_first, send_now, urgent_waiting, withdraw,
)

logger = logging.getLogger(__name__)


def check_priority(value) -> str:
    """A valid Priority value, or ValueError naming the choices."""
    if value not in Priority.values:
        raise ValueError(f"priority must be one of {', '.join(Priority.values)}")
    return str(value)


def priority_for_upload(requested: str | None = None, *, calling_ae: str = "", description: str = "") -> str:
    """The lane of a new study: ``requested`` when given (API field, portal select), else
    the first ``BRAINAI_PRIORITY_RULES`` rule matching the sender's AE title and the study
    description (brainai_site.lanes), else routine.

    Raises:
        ValueError: ``requested`` is not a Priority value.
    """
    if requested:
        return check_priority(requested)
    for rule in parse_rules(getattr(settings, "BRAINAI_PRIORITY_RULES", "")):
        if rule.matches(calling_ae=calling_ae, description=description):
            return rule.priority
    return Priority.ROUTINE


def research_open(now: datetime | None = None) -> bool:
    """Whether research work may start at ``now`` (default: now), in local time."""
    hours = parse_hours(getattr(settings, "BRAINAI_RESEARCH_HOURS", ""))
    if hours is None:
        return True
    now = timezone.localtime(now) if now is not None and timezone.is_aware(now) else (now or timezone.localtime())
    return in_window(hours, now.hour)


def held(priority: str, now: datetime | None = None) -> bool:
    """Work of this lane is held now (research outside its window)."""
    return priority == Priority.RESEARCH and not research_open(now)


def send_analysis(study_id: int, priority: str, now: datetime | None = None, *, first: bool = False) -> bool:
    """Send one study's analysis to its lane now (at the head of the lane with ``first``);
    False when held or the broker is down."""
    if held(priority, now):
        logger.info("study %s: research work held until BRAINAI_RESEARCH_HOURS", study_id)
        return False
    if first:
        return send_first(ANALYZE_STUDY, study_id, priority=lane_step(priority))
    return send_now(ANALYZE_STUDY, study_id, priority=lane_step(priority))


def queue_analysis(study: Study) -> None:
    """Send the study's analysis to its lane once the transaction commits (held research
    work is left for the sweep)."""
    transaction.on_commit(partial(send_analysis, study.pk, study.priority))


def hold_reason(study_id: int, priority: str | None = None, now: datetime | None = None) -> str | None:
    """Why a worker should stop before its next batch of this study, or None to go on:
    ``"held"`` (research outside its window: the sweep sends it again when it opens) or
    ``"urgent waiting"`` (a non-urgent study, with urgent work in the broker: the worker
    puts this study back at the head of its lane and takes the urgent one)."""
    if priority is None:
        priority = Study.objects.filter(pk=study_id).values_list("priority", flat=True).first()
        if priority is None:
            return None
    if held(priority, now):
        return "held"
    if priority != Priority.URGENT and urgent_waiting():
        return "urgent waiting"
    return None


def pause_point(study_id: int, *, worker: str = "", now: datetime | None = None) -> str | None:
    """Asked by the worker before each batch of a study: None to go on, else the reason
    it stops (``hold_reason``). For ``"urgent waiting"`` the study is sent again first, at
    the head of its lane (it goes on before the studies queued after it); a ``"held"`` one
    waits for the sweep. Either way nothing is claimed, so nothing is lost, and a QUEUED
    event says why."""
    priority = Study.objects.filter(pk=study_id).values_list("priority", flat=True).first()
    if priority is None:
        return None
    reason = hold_reason(study_id, priority, now)
    if reason == "urgent waiting" and not send_analysis(study_id, priority, now, first=True):
        return None  # the broker refused it: better to carry on than to leave it unqueued
    if reason:
        logger.info("study %s: paused before its next batch (%s)", study_id, reason)
        events.record(study_id, EventKind.QUEUED, worker=worker, lane=priority, reason=reason)
    return reason


def set_priority(study: Study, priority: str, *, user, via: Via = Via.PORTAL) -> bool:
    """Move a study to another lane; False when it is already there.

    Any study not signed may change (the lane only matters while work waits). Records
    AuditAction.CHANGE_PRIORITY and an OPERATOR pipeline event ({"action": "priority",
    "from", "to"}), and moves the study's waiting gpu message to the new lane on commit.

    Raises:
        ValueError: not a Priority value.
        PermissionDenied: the user is not a radiologist, operator or admin.
        InvalidState: the study is signed.
    """
    priority = check_priority(priority)
    permissions.PRIORITY.require(user, "change a study's priority")
    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=study.pk)
        if study.status == StudyStatus.SIGNED:
            raise InvalidState(f"study {study.pk} is signed; its priority no longer matters")
        old = study.priority
        if old == priority:
            return False
        study.priority = priority
        study.save(update_fields=["priority", "updated_at"])
        audit(AuditAction.CHANGE_PRIORITY, user, via=via, study=study, **{"from": old, "to": priority})
        events.record(study, EventKind.OPERATOR, worker=events.hostname(), action="priority",
                      **{"from": old, "to": priority})
        if study.status == StudyStatus.ANALYZING:
            transaction.on_commit(partial(reroute, study.pk, priority))
    return True


def reroute(study_id: int, priority: str) -> bool:
    """Send a study's analysis to ``priority``'s lane: its waiting message (any lane) is
    withdrawn first; one already taken by a worker runs where it is. True when sent."""
    removed = withdraw(ANALYZE_STUDY, study_id)
    if removed is None:
        return False  # broker down: the sweep sends it to the right lane later
    in_flight = in_broker(settings.BRAINAI_ANALYSIS_SOFT_LIMIT_S + 120) or set()
    if not removed and (ANALYZE_STUDY, study_id) in in_flight:
        return False  # a worker is on it now: it stops at its next batch if it must give way
    return send_analysis(study_id, priority)
