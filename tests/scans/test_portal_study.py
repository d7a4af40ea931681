"""The study page shows live progress, "n of m analysed", from a small JSON endpoint."""
from django.urls import reverse

from tests.scans.test_portal_support import analyse, mri_jpegs, staff_client, upload_study  # noqa: F401


def test_a_study_in_analysis_reports_its_progress(staff_client, staff_user):
    study = upload_study(staff_user, mri_jpegs("glioma", 2))
    html = staff_client.get(reverse("scans:study", args=[study.pk])).content.decode()
    assert "0 of 2 analysed" in html and 'data-done="false"' in html
    assert reverse("scans:study-progress", args=[study.pk]) in html

    progress = staff_client.get(reverse("scans:study-progress", args=[study.pk])).json()
    assert progress["analysed"] == 0 and progress["total"] == 2 and progress["done"] is False
    assert progress["report_ready"] is False


def test_a_finished_study_links_its_report(staff_client, staff_user):
    study = upload_study(staff_user, mri_jpegs("glioma", 2))
    report = analyse(study)
    progress = staff_client.get(reverse("scans:study-progress", args=[study.pk])).json()
    assert progress["analysed"] == 2 and progress["total"] == 2 and progress["done"] is True
    assert progress["report_ready"] is True and progress["report_url"] == reverse("scans:report", args=[report.pk])
    html = staff_client.get(reverse("scans:study", args=[study.pk])).content.decode()
    assert "2 of 2 analysed" in html and 'data-done="true"' in html


def test_staff_cannot_rerun_an_analysis(staff_client, staff_user):
    study = upload_study(staff_user, mri_jpegs("glioma", 1))
    assert staff_client.post(reverse("scans:study-rerun", args=[study.pk])).status_code == 403
