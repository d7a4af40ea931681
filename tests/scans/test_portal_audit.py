"""Every view of a report (page or print) writes an audit event naming who looked."""
from django.urls import reverse

from scans.models import AuditAction, AuditEvent, Via


def views_of(report):
    return AuditEvent.objects.filter(action=AuditAction.VIEW_REPORT, report=report)


def test_opening_a_report_writes_an_audit_event(staff_client, staff_user, report):
    staff_client.get(reverse("scans:report", args=[report.pk]))
    event = views_of(report).get()
    assert event.actor == staff_user and event.via == Via.PORTAL
    assert event.detail == {"version": 1} and event.ip_address == "127.0.0.1"


def test_every_view_counts(staff_client, report):
    for _ in range(3):
        staff_client.get(reverse("scans:report", args=[report.pk]))
    staff_client.get(reverse("scans:report-print", args=[report.pk]))
    assert views_of(report).count() == 4


def test_a_refused_visitor_leaves_no_view_event(client, outsider, report):
    client.force_login(outsider)
    assert client.get(reverse("scans:report", args=[report.pk])).status_code == 403
    assert not views_of(report).exists()
