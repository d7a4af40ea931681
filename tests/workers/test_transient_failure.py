"""When the analysis task gives up on a transient error (the database or the broker still
away after its retries), the study is not failed: its scans stay pending and the sweep
sends it again (tests/e2e/test_faults_postgres.py runs it against a real PostgreSQL
restart). Any other error still fails the study with the reason."""
from __future__ import annotations

import pytest
from django.db import OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError

from scans.models import Report, ReportStatus, ScanStatus, Study, StudyStatus
from scans.services import housekeeping
from tests import builders as b
from workers import tasks

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("exc", [OperationalError("server closed the connection unexpectedly"),
                                 RedisConnectionError("Connection refused")])
def test_a_transient_give_up_leaves_the_study_pending_for_the_sweep(staff_user, sent, exc, monkeypatch):
    study = b.upload_study(staff_user, 2, seed=70)
    tasks.analyze_study.on_failure(exc, "task-id", (study.pk,), {}, None)

    study.refresh_from_db()
    assert study.status == StudyStatus.ANALYZING
    assert set(study.scans.values_list("status", flat=True)) == {ScanStatus.PENDING}
    assert not Report.objects.filter(study=study, status=ReportStatus.FAILED).exists()
    monkeypatch.setattr(housekeeping, "in_broker", lambda *a, **k: set())  # the broker lost it
    sent.clear()
    assert housekeeping.requeue_stalled()["analyze"] == 1
    assert ("workers.tasks.analyze_study", (study.pk,)) in sent


def test_any_other_give_up_fails_the_study_with_the_reason(staff_user, sent):
    study = b.upload_study(staff_user, 2, seed=71)
    tasks.analyze_study.on_failure(ValueError("decoder exploded"), "task-id", (study.pk,), {}, None)

    study.refresh_from_db()
    assert study.status == StudyStatus.FAILED
    report = Report.objects.current().get(study=study)
    assert report.status == ReportStatus.FAILED and "ValueError: decoder exploded" in report.failure_reason


def test_the_retries_come_from_the_setting():
    from django.conf import settings

    assert tasks.analyze_study.max_retries == settings.BRAINAI_TASK_RETRIES == 5
    assert tasks.explain_report.max_retries == tasks.finalize_report.max_retries == 5
