"""The study page shows live progress, "n of m analysed", from a small JSON endpoint."""
from django.urls import reverse

from tests import builders as b


def test_a_study_in_analysis_reports_its_progress(staff_client, staff_user):
    study = b.upload_study(staff_user, 2, mri_class="glioma")
    html = staff_client.get(reverse("scans:study", args=[study.pk])).content.decode()
    assert "0 of 2 analysed" in html and 'data-done="false"' in html
    assert reverse("scans:study-progress", args=[study.pk]) in html

    progress = staff_client.get(reverse("scans:study-progress", args=[study.pk])).json()
    assert progress["analysed"] == 0 and progress["total"] == 2 and progress["done"] is False
    assert progress["report_ready"] is False


def test_a_finished_study_links_its_report(staff_client, staff_user):
    study = b.upload_study(staff_user, 2, mri_class="glioma")
    report = b.explain_and_finalize(b.analyse_study(study))
    progress = staff_client.get(reverse("scans:study-progress", args=[study.pk])).json()
    assert progress["analysed"] == 2 and progress["total"] == 2 and progress["done"] is True
    assert progress["report_ready"] is True and progress["report_url"] == reverse("scans:report", args=[report.pk])
    html = staff_client.get(reverse("scans:study", args=[study.pk])).content.decode()
    assert "2 of 2 analysed" in html and 'data-done="true"' in html


def test_staff_cannot_rerun_an_analysis(staff_client, staff_user):
    study = b.upload_study(staff_user, 1, mri_class="glioma")
    assert staff_client.post(reverse("scans:study-rerun", args=[study.pk])).status_code == 403
