"""Audit gaps of issue #19: an on-demand detail request (API and the portal's "Compute"
button) and the admin's patient pages (a patient's page and each page of the list) are
audit events, with who, how, from where, and ids only (never a name)."""
from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from scans import services
from scans.models import AuditAction, AuditEvent, Patient, Via

pytestmark = pytest.mark.django_db


def _events(action) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_an_api_detail_request_is_audited_with_the_scans_and_the_ip(ready_report, staff_user, staff_api, sent):
    scan_ids = sorted(ready_report.study.scans.values_list("pk", flat=True))
    response = staff_api.post(f"/api/v1/reports/{ready_report.pk}/detail/", {"scans": scan_ids[:1]},
                              format="json", REMOTE_ADDR="10.4.4.4")
    assert response.status_code == 202, response.content
    [event] = _events(AuditAction.REQUEST_DETAIL)
    assert (event.actor_id, event.via, event.ip_address, event.report_id, event.study_id) == (
        staff_user.pk, Via.API, "10.4.4.4", ready_report.pk, ready_report.study_id)
    assert event.detail == {"scans": scan_ids[:1], "count": 1}


def test_the_portal_compute_button_is_audited(ready_report, staff_user, sent):
    scan_ids = sorted(ready_report.study.scans.values_list("pk", flat=True))
    response = _client(staff_user).post(reverse("scans:report-detail", args=[ready_report.pk]), {},
                                        REMOTE_ADDR="10.4.4.5")
    assert response.status_code == 302
    [event] = _events(AuditAction.REQUEST_DETAIL)
    assert (event.actor_id, event.via, event.ip_address) == (staff_user.pk, Via.PORTAL, "10.4.4.5")
    assert event.detail == {"scans": scan_ids, "count": len(scan_ids)}


def test_a_refused_or_empty_detail_request_records_nothing(ready_report, staff_user, outsider, sent):
    assert _client(outsider).post(reverse("scans:report-detail", args=[ready_report.pk]), {}).status_code == 403
    with pytest.raises(services.InvalidState):
        services.request_detail(ready_report, staff_user, [987654])
    assert _events(AuditAction.REQUEST_DETAIL) == []


def test_the_admin_patient_page_and_list_are_audited_with_ids_only(ready_report, clinic_admin):
    patient = ready_report.study.patient
    client = _client(clinic_admin)

    page = client.get(reverse("admin:scans_patient_change", args=[patient.pk]), REMOTE_ADDR="10.5.5.5")
    assert page.status_code == 200 and patient.patient_id in page.content.decode()
    [view] = _events(AuditAction.VIEW_PATIENT)
    assert (view.actor_id, view.via, view.ip_address, view.detail) == (
        clinic_admin.pk, Via.ADMIN, "10.5.5.5", {"patient": patient.pk})

    listing = client.get(reverse("admin:scans_patient_changelist"), REMOTE_ADDR="10.5.5.6")
    assert listing.status_code == 200 and patient.patient_id in listing.content.decode()
    [listed] = _events(AuditAction.LIST_PATIENTS)
    assert (listed.via, listed.ip_address) == (Via.ADMIN, "10.5.5.6")
    assert set(listed.detail) == {"ids"}
    assert sorted(listed.detail["ids"]) == sorted(Patient.objects.values_list("pk", flat=True))
    for row in (view, listed):  # ids, never the patient's id or name
        assert patient.patient_id not in str(row.detail) and (not patient.name or patient.name not in str(row.detail))


def test_a_refused_admin_patient_page_records_nothing(ready_report, staff_user):
    patient = ready_report.study.patient
    response = _client(staff_user).get(reverse("admin:scans_patient_change", args=[patient.pk]))
    assert response.status_code in (302, 403)
    assert _events(AuditAction.VIEW_PATIENT) == [] and _events(AuditAction.LIST_PATIENTS) == []
