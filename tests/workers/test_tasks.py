"""The Celery tasks run in this process (``Task.apply``) with the real model and database.

The queue itself is covered by tests/e2e/test_pipeline.py (a real worker on a real Redis).
"""
from __future__ import annotations

import pytest
from django.core.files.storage import default_storage

from scans import services
from scans.models import Analysis, Report, ReportStatus, Scan, ScanStatus, Study, StudyStatus
from tests import builders as b
from workers import tasks

pytestmark = pytest.mark.django_db


def _run(task, *args):
    result = task.apply(args=args)
    assert result.successful(), result.traceback
    return result.result


def test_a_study_goes_from_upload_to_awaiting_review(staff_user):
    study = b.upload_study(staff_user, 3)

    summary = _run(tasks.analyze_study, study.pk)

    assert summary["analyzed"] == 3 and set(summary["seconds"]) >= {"decode", "model", "render"}
    report = Report.objects.get(study=study)
    assert report.label in {"glioma", "meningioma", "notumor", "pituitary", "not_brain_mri"}
    assert report.model_name and report.model_version and report.key_scan_id
    analysis = Analysis.objects.filter(scan__study=study).first()
    assert default_storage.exists(analysis.heatmap.name) and default_storage.exists(analysis.overlay.name)
    assert set(analysis.probabilities) == {"glioma", "meningioma", "notumor", "pituitary"}
    assert Report.objects.get(pk=report.pk).study.status == StudyStatus.EXPLAINING

    explained = _run(tasks.explain_report, report.pk)
    assert explained["provider"] == "template"
    _run(tasks.finalize_report, report.pk)

    report.refresh_from_db()
    assert report.status == ReportStatus.AWAITING_REVIEW and report.explanation_text
    assert "not a diagnosis" in report.explanation_text  # the llm package's decision-support notice


def test_running_each_task_twice_duplicates_nothing(staff_user):
    study = b.upload_study(staff_user, 2, seed=20)
    _run(tasks.analyze_study, study.pk)
    report = Report.objects.get(study=study)
    _run(tasks.explain_report, report.pk)
    first = Report.objects.get(pk=report.pk).explanation_generated_at

    again = _run(tasks.analyze_study, study.pk)
    skipped = _run(tasks.explain_report, report.pk)
    _run(tasks.finalize_report, report.pk)
    _run(tasks.finalize_report, report.pk)

    assert again["analyzed"] == 0 and skipped["skipped"]
    assert Analysis.objects.filter(scan__study=study).count() == 2
    assert Report.objects.filter(study=study).count() == 1
    assert Report.objects.get(pk=report.pk).explanation_generated_at == first


def test_a_multi_frame_dicom_is_analysed_frame_by_frame(staff_user):
    result = services.register_upload(staff_user, [b.upload("cine.dcm", b.dicom_bytes(frames=3, size=128))], {})
    study = result.studies[0]

    assert _run(tasks.analyze_study, study.pk)["analyzed"] == 3
    assert Scan.objects.filter(study=study, status=ScanStatus.ANALYZED).count() == 3


def test_a_stored_image_that_cannot_be_read_fails_that_scan_with_its_reason(staff_user):
    study = b.upload_study(staff_user, 2, seed=40)
    broken = study.scans.order_by("pk").first()
    default_storage.delete(broken.source.name)
    default_storage.save(broken.source.name, __import__("io").BytesIO(b"not an image any more"))

    _run(tasks.analyze_study, study.pk)

    broken.refresh_from_db()
    assert broken.status == ScanStatus.FAILED and "could not read the stored image" in broken.error
    assert Report.objects.get(study=study).label  # the other scan still gives a finding


def test_a_missing_model_fails_the_study_with_the_reason(staff_user, settings):
    settings.BRAINAI_MODEL = "no-such-model"
    study = b.upload_study(staff_user, 1, seed=50)

    _run(tasks.analyze_study, study.pk)

    report = Report.objects.get(study=study)
    assert report.status == ReportStatus.FAILED and "model unavailable" in report.failure_reason


def test_a_study_is_analysed_with_the_model_its_upload_chose(staff_user):
    result = services.register_upload(staff_user, [b.upload("cnn.png", b.png_bytes(seed=56))],
                                      {"patient_id": "P-CNN"}, model="cnn")
    study = result.studies[0]

    assert _run(tasks.analyze_study, study.pk)["analyzed"] == 1

    assert set(Analysis.objects.filter(scan__study=study).values_list("model_name", flat=True)) == {"cnn"}
    assert Report.objects.get(study=study).model_name == "cnn"


def test_a_requested_model_that_is_gone_fails_the_study_with_the_reason(staff_user):
    study = b.upload_study(staff_user, 1, seed=57)
    Study.objects.filter(pk=study.pk).update(requested_model="retired-model")  # removed after the upload

    assert _run(tasks.analyze_study, study.pk)["failed"] == "model unavailable"

    report = Report.objects.get(study=study)
    assert report.status == ReportStatus.FAILED
    assert "model unavailable" in report.failure_reason and "retired-model" in report.failure_reason


def test_after_too_many_attempts_the_offline_template_explains(staff_user, settings):
    settings.BRAINAI_MAX_ATTEMPTS = 1
    study = b.upload_study(staff_user, 1, seed=60)
    report = b.analyse_study(study)
    Report.objects.filter(pk=report.pk).update(explanation_task_attempts=1)

    assert _run(tasks.explain_report, report.pk)["provider"] == "template"
    assert Report.objects.get(pk=report.pk).explanation_text


def test_a_deleted_study_is_skipped(staff_user):
    assert _run(tasks.analyze_study, 987654)["skipped"]
    assert _run(tasks.explain_report, 987654)["skipped"]
    assert _run(tasks.finalize_report, 987654)["finalized"] is False


def test_a_finding_ml_refuses_still_gets_an_explanation_and_a_review(staff_user):
    study = b.upload_study(staff_user, 1, seed=70)
    report = b.analyse_study(study)
    Report.objects.filter(pk=report.pk).update(probabilities={"banana": 2.0})

    assert _run(tasks.explain_report, report.pk)["provider"] == "none"
    _run(tasks.finalize_report, report.pk)

    report.refresh_from_db()
    assert report.status == ReportStatus.AWAITING_REVIEW
    assert "invalid finding" in report.explanation_fallback_reason
