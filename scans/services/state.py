"""The only writers of the three status fields, one per model.

    move_scans         Scan.status    along SCAN_TRANSITIONS
    move_report        Report.status  along REPORT_TRANSITIONS
    sync_study_status  Study.status   derived from the current report (Study.derived_status)
    move_delivery      Delivery.status along DELIVERY_TRANSITIONS (sending results back)
    move_notification  Notification.status along NOTIFICATION_TRANSITIONS (webhooks, e-mails)

The tables live in scans.models.choices. Every other module calls these; the test
tests/scans/test_state_writers.py fails when a status is written anywhere else.
"""
from __future__ import annotations

from django.db.models import QuerySet

from scans.models import (
    DELIVERY_TRANSITIONS, NOTIFICATION_TRANSITIONS, REPORT_TRANSITIONS, SCAN_TRANSITIONS, Delivery, Notification,
    Report, Scan, Study,
)
from scans.services.errors import InvalidState


def move_scans(scans: QuerySet[Scan] | Scan, to: str, **values) -> int:
    """Move scans to status ``to``, writing ``values`` with it; returns how many moved.

    Scans whose status may not move to ``to`` are left as they are (and not counted), so
    the table holds even for rows changed since the caller read them. A Scan instance
    given alone is updated in memory too when it moved.
    """
    sources = [status for status, targets in SCAN_TRANSITIONS.items() if to in targets]
    instance = scans if isinstance(scans, Scan) else None
    queryset = Scan.objects.filter(pk=instance.pk) if instance is not None else scans
    moved = queryset.filter(status__in=sources).update(status=to, **values)
    if instance is not None and moved:
        instance.status = to
        for name, value in values.items():
            setattr(instance, name, value)
    return moved


def move_report(report: Report, to: str, *, also=()) -> Report:
    """Move a report (locked by the caller) to status ``to`` and save it.

    ``also`` names fields the caller changed on ``report`` that are saved with the status;
    a report not in the database yet (an amendment) is inserted whole. The study's status
    follows when the report is the current one.

    Raises:
        InvalidState: REPORT_TRANSITIONS has no move from the report's status to ``to``.
    """
    if to not in REPORT_TRANSITIONS[report.status]:
        raise InvalidState(f"report {report.pk} cannot go from {report.status} to {to}")
    report.status = to
    if report._state.adding:
        report.save(force_insert=True)
    else:
        report.save(update_fields=["status", "updated_at", *also])
    if report.is_current:
        sync_study_status(report.study, report)
    return report


def sync_study_status(study: Study, report: Report | None = None) -> str:
    """Store the status the study's report and scans imply; returns it.

    Call after anything that can change ``Study.derived_status``: a report's status or AI
    finding, or the study's scans going back to pending.
    """
    status = study.derived_status(report)
    if study.status != status:
        study.status = status
        study.save(update_fields=["status", "updated_at"])
    return status


def move_delivery(delivery: Delivery, to: str, **values) -> bool:
    """Move a delivery (locked by the caller) to status ``to`` with ``values``; False (and
    nothing written) when DELIVERY_TRANSITIONS has no such move."""
    if to not in DELIVERY_TRANSITIONS[delivery.status]:
        return False
    delivery.status = to
    for name, value in values.items():
        setattr(delivery, name, value)
    delivery.save(update_fields=["status", "updated_at", *values])
    return True


def move_notification(notification: Notification, to: str, **values) -> bool:
    """Move a notification (locked by the caller) to status ``to`` with ``values``; False
    (and nothing written) when NOTIFICATION_TRANSITIONS has no such move."""
    if to not in NOTIFICATION_TRANSITIONS[notification.status]:
        return False
    notification.status = to
    for name, value in values.items():
        setattr(notification, name, value)
    notification.save(update_fields=["status", "updated_at", *values])
    return True
