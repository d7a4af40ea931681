"""The status tables: a move they do not list is refused, the study's status follows its
report, and a re-run clears every field the pipeline writes."""
from __future__ import annotations

import pytest

from scans import services
from scans.models import Report, ReportStatus, Scan, ScanStatus, StudyStatus
from scans.services import state
from tests import builders as b

pytestmark = pytest.mark.django_db

# Report fields a re-run keeps: identity, versioning, the status itself, and the review.
REPORT_KEPT = {"id", "study", "version", "is_current", "previous", "status", "findings", "impression",
               "snapshot", "snapshot_sha256",  # only a signed version has one, and it is never re-run
               "reviewed_by", "reviewed_at", "signed_by", "signed_at",
               "created_at", "updated_at"}
# Scan fields a re-run keeps: what was uploaded, and the status itself.
SCAN_KEPT = {"id", "study", "series", "upload", "source", "image", "original_name", "sha256", "frame_index",
             "sop_instance_uid", "instance_number", "rows", "columns", "orientation", "status", "created_at"}


@pytest.mark.parametrize("model, cleared, kept", [
    (Report, Report.AI_RESULT_FIELDS, REPORT_KEPT),
    (Scan, Scan.ANALYSIS_FIELDS, SCAN_KEPT),
])
def test_every_field_is_either_cleared_by_a_rerun_or_kept_on_purpose(model, cleared, kept):
    fields = {f.name for f in model._meta.concrete_fields}
    assert set(cleared) | kept == fields and not set(cleared) & kept


def test_a_signed_report_cannot_go_back_to_processing(ready_report, radiologist):
    services.sign_report(ready_report, radiologist)
    report = Report.objects.get(pk=ready_report.pk)

    with pytest.raises(services.InvalidState):
        state.move_report(report, ReportStatus.PROCESSING)

    assert Report.objects.get(pk=report.pk).status == ReportStatus.SIGNED


def test_a_scan_not_pending_is_not_marked_analysed(staff_user):
    study = b.upload_study(staff_user, 2)
    first = study.scans.first()
    state.move_scans(first, ScanStatus.FAILED, error="bad")

    assert state.move_scans(study.scans.all(), ScanStatus.ANALYZED) == 1

    assert Scan.objects.get(pk=first.pk).status == ScanStatus.FAILED


def test_the_study_status_follows_its_report_through_the_pipeline(staff_user, radiologist):
    study = b.upload_study(staff_user, 1)
    seen = [study.status]
    report = b.analyse_study(study)
    seen.append(Report.objects.get(pk=report.pk).study.status)
    b.explain_and_finalize(report)
    seen.append(Report.objects.get(pk=report.pk).study.status)
    services.sign_report(Report.objects.get(pk=report.pk), radiologist)
    study.refresh_from_db()
    seen.append(study.status)

    assert seen == [StudyStatus.ANALYZING, StudyStatus.EXPLAINING, StudyStatus.AWAITING_REVIEW, StudyStatus.SIGNED]
    assert study.status == study.derived_status()


def test_a_rerun_clears_the_whole_ai_result(ready_report, clinic_admin):
    services.rerun_analysis(ready_report.study, clinic_admin)

    report = Report.objects.get(pk=ready_report.pk)
    fresh = Report(study=report.study)
    assert all(getattr(report, name) == getattr(fresh, name) for name in Report.AI_RESULT_FIELDS)
