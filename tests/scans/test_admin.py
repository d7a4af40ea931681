"""Django admin: every list and page opens; actions go through the services."""
from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from scans.models import AuditEvent, Report, ReportStatus, Study, StudyStatus
from tests import builders as b

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_(clinic_admin):
    client = Client()
    client.force_login(clinic_admin)
    return client


@pytest.mark.parametrize("model", ["patient", "study", "series", "scan", "analysis", "report", "upload", "auditevent"])
def test_every_list_opens_with_search(admin_client_, ready_report, model):
    response = admin_client_.get(reverse(f"admin:scans_{model}_changelist"), {"q": "P-100"})
    assert response.status_code == 200


def test_detail_pages_show_thumbnails_and_cannot_be_edited(admin_client_, ready_report):
    scan = ready_report.study.scans.first()
    page = admin_client_.get(reverse("admin:scans_scan_change", args=[scan.pk]))
    assert page.status_code == 200 and b"/media/overlays/" in page.content
    assert b'name="_save"' not in page.content
    report_page = admin_client_.get(reverse("admin:scans_report_change", args=[ready_report.pk]))
    assert report_page.status_code == 200 and b'name="_save"' not in report_page.content


def test_the_rerun_action_calls_the_service(admin_client_, ready_report):
    response = admin_client_.post(reverse("admin:scans_study_changelist"),
                                  {"action": "rerun_analysis", "_selected_action": [ready_report.study_id]})
    assert response.status_code == 302
    assert Study.objects.get(pk=ready_report.study_id).status == StudyStatus.ANALYZING
    assert AuditEvent.objects.filter(action="rerun_analysis", via="admin").exists()


def test_the_mark_failed_action_takes_a_reason(admin_client_, staff_user):
    study = b.upload_study(staff_user, 1)
    admin_client_.post(reverse("admin:scans_study_changelist"),
                       {"action": "mark_failed", "_selected_action": [study.pk], "reason": "duplicate study"})
    report = Report.objects.get(study=study)
    assert report.status == ReportStatus.FAILED and report.failure_reason == "duplicate study"


def test_the_regenerate_action_marks_the_explanation_pending(admin_client_, ready_report):
    admin_client_.post(reverse("admin:scans_report_changelist"),
                       {"action": "regenerate_explanation", "_selected_action": [ready_report.pk]})
    assert Report.objects.get(pk=ready_report.pk).explanation_pending


def test_a_refused_action_is_reported_not_raised(admin_client_, ready_report, clinic_admin):
    from scans import services

    services.sign_report(ready_report, clinic_admin)
    response = admin_client_.post(reverse("admin:scans_report_changelist"),
                                  {"action": "rerun_analysis", "_selected_action": [ready_report.pk]}, follow=True)
    assert b"signed" in response.content


def test_staff_users_are_not_admins(staff_user):
    client = Client()
    client.force_login(staff_user)
    assert client.get("/admin/").status_code == 302


def test_the_study_list_shows_the_requested_model(admin_client_, ready_report):
    Study.objects.filter(pk=ready_report.study_id).update(requested_model="cnn")
    page = admin_client_.get(reverse("admin:scans_study_changelist"))
    assert page.status_code == 200
    assert b'class="field-model_display">cnn<' in page.content
