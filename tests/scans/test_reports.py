"""Review, sign-off and amendment of reports (scans.services.reports)."""
from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied

from scans import services
from scans.models import AuditEvent, Report, ReportStatus, StudyStatus
from tests import builders as b

pytestmark = pytest.mark.django_db


def test_a_ready_report_awaits_review_with_finding_and_explanation(ready_report):
    assert ready_report.status == ReportStatus.AWAITING_REVIEW
    assert ready_report.is_editable and not ready_report.is_signed
    assert ready_report.label == "glioma" and ready_report.confidence == pytest.approx(0.9)
    assert ready_report.explanation_text and not ready_report.explanation_pending
    assert ready_report.study.status == StudyStatus.AWAITING_REVIEW


def test_a_radiologist_saves_the_review(ready_report, radiologist):
    services.update_review(ready_report, radiologist, " Enhancing lesion. ", "Likely glioma.")

    ready_report.refresh_from_db()
    assert (ready_report.findings, ready_report.impression) == ("Enhancing lesion.", "Likely glioma.")
    assert ready_report.reviewed_by == radiologist
    assert AuditEvent.objects.filter(action="update_review", report=ready_report).exists()


def test_staff_may_not_review_or_sign(ready_report, staff_user):
    with pytest.raises(PermissionDenied):
        services.update_review(ready_report, staff_user, "x", "y")
    with pytest.raises(PermissionDenied):
        services.sign_report(ready_report, staff_user)


def test_signing_locks_the_report_and_is_audited(ready_report, radiologist):
    services.sign_report(ready_report, radiologist)

    report = Report.objects.get(pk=ready_report.pk)
    assert report.status == ReportStatus.SIGNED and report.signed_by == radiologist and report.signed_at
    assert not report.is_editable and report.is_amendable
    assert report.study.status == StudyStatus.SIGNED
    assert AuditEvent.objects.filter(action="sign_report", report=report, actor=radiologist).exists()
    with pytest.raises(services.InvalidState):
        services.update_review(report, radiologist, "changed", "changed")
    with pytest.raises(services.InvalidState):
        services.sign_report(report, radiologist)


def test_a_report_still_processing_cannot_be_signed(staff_user, radiologist):
    study = b.upload_study(staff_user)
    with pytest.raises(services.InvalidState):
        services.sign_report(study.report, radiologist)


def test_an_amendment_is_a_new_signed_version_and_the_old_one_is_kept(ready_report, radiologist):
    services.update_review(ready_report, radiologist, "first", "first impression")
    services.sign_report(ready_report, radiologist)

    new = services.amend_report(ready_report, radiologist, "second look", "revised impression")

    old = Report.objects.get(pk=ready_report.pk)
    assert (old.status, old.is_current, old.impression) == (ReportStatus.SIGNED, False, "first impression")
    assert (new.status, new.is_current, new.version, new.previous_id) == (ReportStatus.AMENDED, True, 2, old.pk)
    assert new.impression == "revised impression" and new.signed_by == radiologist
    assert new.label == old.label and new.explanation_text == old.explanation_text
    assert old.study.report == new
    again = services.amend_report(new, radiologist, "third", "third")
    assert again.version == 3
    with pytest.raises(services.InvalidState):
        services.amend_report(old, radiologist, "no", "no")  # only the current version


def test_an_unsigned_report_cannot_be_amended(ready_report, radiologist):
    with pytest.raises(services.InvalidState):
        services.amend_report(ready_report, radiologist, "x", "y")


def test_regenerating_the_explanation_marks_it_pending_and_keeps_the_old_text(ready_report, staff_user):
    text = ready_report.explanation_text

    services.regenerate_explanation(ready_report, staff_user)

    ready_report.refresh_from_db()
    assert ready_report.explanation_pending and ready_report.explanation_text == text
    assert services.explanation_due(ready_report.pk) is not None
    b.explain_and_finalize(ready_report)
    ready_report.refresh_from_db()
    assert not ready_report.explanation_pending
    assert ready_report.status == ReportStatus.AWAITING_REVIEW


def test_an_explanation_answering_an_older_request_leaves_the_newer_one_pending(ready_report, staff_user):
    from llm import Explanation

    services.regenerate_explanation(ready_report, staff_user)
    first_request = Report.objects.get(pk=ready_report.pk).explanation_requested_at
    services.regenerate_explanation(ready_report, staff_user)

    services.record_explanation(ready_report.pk, Explanation("old answer", "template", "t", "v", 1),
                                requested_at=first_request)

    assert Report.objects.get(pk=ready_report.pk).explanation_pending


def test_a_signed_report_keeps_its_explanation(ready_report, radiologist, staff_user):
    services.sign_report(ready_report, radiologist)
    with pytest.raises(services.InvalidState):
        services.regenerate_explanation(ready_report, staff_user)


def test_every_view_is_audited(ready_report, staff_user):
    services.record_view(ready_report, staff_user)
    services.record_view(ready_report, staff_user, via="api", ip_address="127.0.0.1")

    events = AuditEvent.objects.filter(action="view_report", report=ready_report)
    assert events.count() == 2 and {e.via for e in events} == {"portal", "api"}
    assert all(e.study_id == ready_report.study_id for e in events)


def test_finalising_twice_changes_nothing(ready_report):
    assert services.finalize_report(ready_report.pk) is None
    assert Report.objects.get(pk=ready_report.pk).status == ReportStatus.AWAITING_REVIEW
