"""Writing audit events. Detail holds ids and counts only, never names or UIDs.

Rows are append-only (scans.models.audit); study and report are kept as plain ids.
"""
from __future__ import annotations

from scans.models import AuditAction, AuditEvent, Via


def audit(action: AuditAction, user=None, *, via: Via = Via.PORTAL, study=None, report=None,
          ip_address: str | None = None, study_id: int | None = None, **detail) -> AuditEvent:
    """Append one event; ``study``/``report`` are rows (their ids are stored), detail is ids and counts."""
    actor = user if (user is not None and user.is_authenticated) else None
    if study is not None:
        study_id = study.pk
    elif report is not None:
        study_id = report.study_id
    return AuditEvent.objects.create(
        actor_id=actor.pk if actor else None,
        actor_username=actor.get_username() if actor else "",
        action=action,
        via=via,
        study_id=study_id,
        report_id=report.pk if report is not None else None,
        ip_address=ip_address,
        detail=detail,
    )


def record_view(report, user, *, via: Via = Via.PORTAL, ip_address: str | None = None) -> AuditEvent:
    """Every time a person opens a report (portal page, print view, API detail, admin page)."""
    return audit(AuditAction.VIEW_REPORT, user, via=via, report=report, ip_address=ip_address,
                 version=report.version)


def record_read(action: AuditAction, user, *, via: Via, ip_address: str | None = None,
                study_id: int | None = None, **detail) -> AuditEvent:
    """Any other read of patient data: a study, a page of a list (its ids), an image file."""
    return audit(action, user, via=via, study_id=study_id, ip_address=ip_address, **detail)
