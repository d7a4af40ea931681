"""Review and sign-off in the portal: radiologists only, signed is read-only, amendments are versions."""
from django.test import Client
from django.urls import reverse

from scans.models import AuditAction, AuditEvent, Report, ReportStatus

TEXT = {"findings": "Enhancing mass in the left frontal lobe.", "impression": "Likely high-grade glioma."}


def test_a_radiologist_sees_the_review_form(radiologist_client, report):
    html = radiologist_client.get(reverse("scans:report", args=[report.pk])).content.decode()
    assert 'id="review-form"' in html and 'id="sign-button"' in html


def test_staff_see_the_review_read_only(staff_client, report):
    html = staff_client.get(reverse("scans:report", args=[report.pk])).content.decode()
    assert 'id="review-form"' not in html and "<textarea" not in html
    assert "Only radiologists can edit and sign" in html


def test_staff_cannot_sign(staff_client, report):
    response = staff_client.post(reverse("scans:report-sign", args=[report.pk]), TEXT)
    assert response.status_code == 403
    report.refresh_from_db()
    assert report.status == ReportStatus.AWAITING_REVIEW and report.signed_by is None


def test_staff_cannot_save_a_review(staff_client, report):
    assert staff_client.post(reverse("scans:report-review", args=[report.pk]), TEXT).status_code == 403
    report.refresh_from_db()
    assert report.findings == ""


def test_a_radiologist_saves_a_draft(radiologist_client, radiologist, report):
    response = radiologist_client.post(reverse("scans:report-review", args=[report.pk]), TEXT)
    assert response.status_code == 302
    report.refresh_from_db()
    assert (report.findings, report.impression) == (TEXT["findings"], TEXT["impression"])
    assert report.status == ReportStatus.AWAITING_REVIEW and report.reviewed_by == radiologist


def test_a_radiologist_signs_with_the_text_in_the_form(radiologist_client, radiologist, report):
    response = radiologist_client.post(reverse("scans:report-sign", args=[report.pk]), TEXT, follow=True)
    assert response.status_code == 200
    report.refresh_from_db()
    assert report.status == ReportStatus.SIGNED and report.signed_by == radiologist
    assert report.findings == TEXT["findings"]
    assert AuditEvent.objects.filter(action=AuditAction.SIGN_REPORT, report=report, actor=radiologist).exists()
    assert b"Report signed" in response.content


def test_a_signed_report_is_read_only(radiologist_client, signed_report):
    url = reverse("scans:report", args=[signed_report.pk])
    html = radiologist_client.get(url).content.decode()
    assert 'id="review-form"' not in html and 'id="sign-button"' not in html
    assert 'id="signature"' in html and "read-only" in html

    response = radiologist_client.post(reverse("scans:report-review", args=[signed_report.pk]),
                                       {"findings": "changed", "impression": "changed"}, follow=True)
    assert b"cannot be edited" in response.content
    signed_report.refresh_from_db()
    assert signed_report.findings == "Enhancing mass, left frontal." and signed_report.status == ReportStatus.SIGNED


def test_signing_twice_changes_nothing(radiologist_client, signed_report):
    signed_at = signed_report.signed_at
    radiologist_client.post(reverse("scans:report-sign", args=[signed_report.pk]), TEXT)
    signed_report.refresh_from_db()
    assert signed_report.signed_at == signed_at and signed_report.findings != TEXT["findings"]


def test_an_amendment_creates_a_new_version(radiologist_client, radiologist, signed_report):
    response = radiologist_client.post(reverse("scans:report-amend", args=[signed_report.pk]),
                                       {"amend-findings": "Mass, left frontal; no midline shift.",
                                        "amend-impression": "Glioma favoured."})
    new = Report.objects.current().get(study=signed_report.study)
    assert response.status_code == 302 and response.url == reverse("scans:report", args=[new.pk])
    assert new.version == 2 and new.previous_id == signed_report.pk and new.status == ReportStatus.AMENDED
    assert new.findings == "Mass, left frontal; no midline shift." and new.signed_by == radiologist
    old = Report.objects.get(pk=signed_report.pk)
    assert not old.is_current and old.findings == "Enhancing mass, left frontal."

    html = radiologist_client.get(response.url).content.decode()
    assert 'id="versions"' in html and "Version 2 (shown)" in html
    assert reverse("scans:report", args=[old.pk]) in html
    old_html = radiologist_client.get(reverse("scans:report", args=[old.pk])).content.decode()
    assert "kept for the record" in old_html and "Amend this report" not in old_html


def test_staff_cannot_amend(staff_client, signed_report):
    response = staff_client.post(reverse("scans:report-amend", args=[signed_report.pk]),
                                 {"amend-findings": "x", "amend-impression": "y"})
    assert response.status_code == 403
    assert Report.objects.filter(study=signed_report.study).count() == 1


def test_the_sign_form_enforces_csrf(radiologist, report):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(radiologist)
    url = reverse("scans:report-sign", args=[report.pk])

    assert browser.post(url, TEXT).status_code == 403
    report.refresh_from_db()
    assert report.status == ReportStatus.AWAITING_REVIEW

    browser.get(reverse("scans:report", args=[report.pk]))  # sets the csrftoken cookie
    token = browser.cookies["csrftoken"].value
    assert browser.post(url, {**TEXT, "csrfmiddlewaretoken": token}).status_code == 302
    report.refresh_from_db()
    assert report.status == ReportStatus.SIGNED


def test_a_new_explanation_can_be_requested_before_sign_off(staff_client, report):
    response = staff_client.post(reverse("scans:report-explanation", args=[report.pk]), follow=True)
    assert b"A new explanation has been requested" in response.content
    report.refresh_from_db()
    assert report.explanation_pending
