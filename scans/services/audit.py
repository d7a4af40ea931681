"""Writing audit events. Detail holds ids and counts only, never names or UIDs."""
from __future__ import annotations

from scans.models import AuditAction, AuditEvent, Via


def audit(action: AuditAction, user=None, *, via: Via = Via.PORTAL, study=None, report=None,
          ip_address: str | None = None, **detail) -> AuditEvent:
    actor = user if (user is not None and user.is_authenticated) else None
    if report is not None and study is None:
        study = report.study
    return AuditEvent.objects.create(
        actor=actor,
        actor_username=actor.get_username() if actor else "",
        action=action,
        via=via,
        study=study,
        report=report,
        ip_address=ip_address,
        detail=detail,
    )


def record_view(report, user, *, via: Via = Via.PORTAL, ip_address: str | None = None) -> AuditEvent:
    """Every time a person opens a report (portal page or API detail)."""
    return audit(AuditAction.VIEW_REPORT, user, via=via, report=report, ip_address=ip_address,
                 version=report.version)
