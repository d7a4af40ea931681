"""The analysis side of the services: batches, attempts, the study finding, failures."""
from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied

from scans import services
from scans.models import Analysis, Report, ReportStatus, Scan, ScanStatus, StudyStatus
from scans.services.analysis import study_finding
from tests import builders as b

pytestmark = pytest.mark.django_db


def test_claiming_a_batch_counts_an_attempt_on_each_scan(staff_user):
    study = b.upload_study(staff_user, 3)

    batch = services.claim_batch(study.pk, 2, 3)

    assert len(batch) == 2 and all(s.attempts == 1 for s in batch)
    assert Scan.objects.filter(study=study, attempts=0).count() == 1


def test_a_scan_tried_too_often_is_failed_not_requeued(staff_user):
    study = b.upload_study(staff_user, 2)
    Scan.objects.filter(study=study).update(attempts=3, error="worker lost")

    assert services.claim_batch(study.pk, 10, 3) == []

    scans = Scan.objects.filter(study=study)
    assert all(s.status == ScanStatus.FAILED and "gave up after 3 attempts" in s.error for s in scans)
    assert "last error: worker lost" in scans[0].error


def test_recording_results_twice_keeps_one_analysis_per_scan(staff_user):
    study = b.upload_study(staff_user, 2)
    scans = services.claim_batch(study.pk, 10, 3)
    png = b"\x89PNG fake"
    results = [services.ScanResult(s.pk, b.slice_result(), png, png) for s in scans]

    assert services.record_analyses(results, model_name="m", model_version="v") == 2
    assert services.record_analyses(results, model_name="m", model_version="v") == 0

    assert Analysis.objects.filter(scan__study=study).count() == 2
    assert set(Scan.objects.filter(study=study).values_list("status", flat=True)) == {ScanStatus.ANALYZED}


def test_the_most_suspicious_slice_decides_the_study(staff_user):
    study = b.upload_study(staff_user, 3)
    report = b.analyse_study(study, labels=("notumor", "meningioma", "notumor"))

    assert report.label == "meningioma"
    assert report.key_scan.instance_number == 2
    assert report.probabilities["meningioma"] == pytest.approx(0.9)
    assert Report.objects.get(pk=report.pk).study.status == StudyStatus.EXPLAINING
    assert report.explanation_pending


def test_a_study_the_guard_rejects_is_not_brain_mri(staff_user):
    study = b.upload_study(staff_user, 2)
    report = b.analyse_study(study, in_distribution=False)
    assert report.label == "not_brain_mri"


def test_study_finding_prefers_in_distribution_slices():
    ok = Analysis(scan_id=1, label="notumor", probabilities={"notumor": 0.6, "glioma": 0.4}, confidence=0.6,
                  in_distribution=True)
    rejected = Analysis(scan_id=2, label="not_brain_mri", probabilities={"notumor": 0.0, "glioma": 1.0},
                        confidence=1.0, in_distribution=False)
    assert study_finding([ok, rejected]) is ok
    assert study_finding([]) is None


def test_completing_twice_does_nothing_the_second_time(staff_user):
    study = b.upload_study(staff_user, 1)
    assert b.analyse_study(study) is not None
    assert services.complete_analysis(study.pk) is None


def test_a_study_with_no_analysable_scan_fails_with_the_reasons(staff_user):
    study = b.upload_study(staff_user, 2)
    for scan in services.claim_batch(study.pk, 10, 3):
        services.record_scan_error(scan.pk, "could not read the stored image: damaged", final=True)

    report = services.complete_analysis(study.pk)

    assert report.status == ReportStatus.FAILED and "damaged" in report.failure_reason
    study.refresh_from_db()
    assert study.status == StudyStatus.FAILED


def test_an_admin_marks_a_study_failed_with_a_reason(staff_user, clinic_admin):
    study = b.upload_study(staff_user, 2)

    services.mark_failed(study, clinic_admin, "wrong patient uploaded")

    study.refresh_from_db()
    assert study.status == StudyStatus.FAILED
    assert study.report.status == ReportStatus.FAILED and study.report.failure_reason == "wrong patient uploaded"
    assert set(study.scans.values_list("status", flat=True)) == {ScanStatus.FAILED}


def test_marking_the_last_pending_scan_failed_completes_the_study(staff_user, clinic_admin):
    study = b.upload_study(staff_user, 2)
    first, second = services.claim_batch(study.pk, 10, 3)
    png = b"png"
    services.record_analyses([services.ScanResult(first.pk, b.slice_result("pituitary"), png, png)],
                             model_name="m", model_version="v")

    services.mark_failed(second, clinic_admin, "motion artefact")

    report = Report.objects.get(study=study)
    assert Scan.objects.get(pk=second.pk).error == "motion artefact"
    assert report.label == "pituitary" and report.explanation_pending


def test_only_admins_mark_failed(staff_user, radiologist):
    study = b.upload_study(staff_user, 1)
    with pytest.raises(PermissionDenied):
        services.mark_failed(study, radiologist, "no")


def test_a_rerun_starts_over_and_keeps_the_review_text(ready_report, radiologist, clinic_admin):
    services.update_review(ready_report, radiologist, "draft", "draft")

    services.rerun_analysis(ready_report.study, clinic_admin)

    report = Report.objects.get(pk=ready_report.pk)
    assert report.status == ReportStatus.PROCESSING and report.label == "" and report.explanation_text == ""
    assert report.findings == "draft"
    assert Analysis.objects.filter(scan__study=report.study).count() == 0
    assert set(report.study.scans.values_list("status", "attempts")) == {(ScanStatus.PENDING, 0)}
    assert report.study.status == StudyStatus.ANALYZING


def test_a_signed_study_is_not_rerun(ready_report, radiologist, clinic_admin):
    services.sign_report(ready_report, radiologist)
    with pytest.raises(services.InvalidState):
        services.rerun_analysis(ready_report.study, clinic_admin)
    with pytest.raises(PermissionDenied):
        services.rerun_analysis(ready_report.study, ready_report.study.uploaded_by)


def test_progress_counts_scans(staff_user):
    study = b.upload_study(staff_user, 4)
    scans = services.claim_batch(study.pk, 2, 3)
    services.record_analyses([services.ScanResult(scans[0].pk, b.slice_result(), b"p", b"p")],
                             model_name="m", model_version="v")
    services.record_scan_error(scans[1].pk, "bad", final=True)

    progress = study.progress
    assert (progress.total, progress.analyzed, progress.failed, progress.pending) == (4, 1, 1, 2)
    assert progress.percent == 50 and not progress.is_complete
