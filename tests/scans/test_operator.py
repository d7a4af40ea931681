"""The operator's view (issue #20, part 2): the pipeline event log, the operator's verbs
(retry a study or a scan, cancel), the queue page, its JSON twin, and who may use them.

The pipeline is driven by hand through the services (tests/builders.py); the e2e test with
a real worker is tests/e2e/test_operator_e2e.py.
"""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError, transaction
from django.urls import reverse
from django.utils import timezone

from scans import selectors, services
from scans.models import (
    AuditAction, AuditEvent, EventKind, PipelineEvent, Report, ReportStatus, Scan, ScanStatus, Study, StudyStatus,
)
from scans.services import events, operations
from scans.services.queue import ANALYZE_STUDY, EXPLAIN_REPORT
from tests import builders as b
from tests.broker import broker_at, free_port

pytestmark = pytest.mark.django_db

PATIENT_ID = "MRN-55120987"
PATIENT_NAME = "Quimby^Zoltan"


@pytest.fixture
def operator(django_user_model):
    return b.make_user(django_user_model, "olga", "operator")


@pytest.fixture
def operator_client(client, operator):
    client.force_login(operator)
    return client


def kinds(study) -> list[str]:
    return list(PipelineEvent.objects.filter(study=study).values_list("kind", flat=True))


def failed_study(user, n: int = 2) -> Study:
    """A study whose analysis failed (every scan failed with a reason)."""
    study = b.upload_study(user, n)
    for scan in services.claim_batch(study.pk, 100, 3):
        services.record_scan_error(scan.pk, f"could not read /var/media/sources/ab/{scan.pk}.dcm", final=True)
    services.complete_analysis(study.pk)
    study.refresh_from_db()
    assert study.status == StudyStatus.FAILED
    return study


# --- the event log -------------------------------------------------------------------------


def test_events_follow_the_pipeline_in_order_without_phi(staff_user, sent):
    study = b.upload_study(staff_user, 2, patient_id=PATIENT_ID, patient_name=PATIENT_NAME)
    report = b.analyse_study(study)
    b.explain_and_finalize(report)
    assert kinds(study) == ["received", "queued", "explained", "finalised"]
    received = PipelineEvent.objects.get(study=study, kind=EventKind.RECEIVED)
    assert received.detail["scans"] == 2 and received.detail["via"] == "api"
    assert PipelineEvent.objects.get(study=study, kind=EventKind.QUEUED).detail["lane"] == study.priority
    assert PipelineEvent.objects.get(study=study, kind=EventKind.EXPLAINED).detail["provider"] == "template"
    stored = json.dumps(list(PipelineEvent.objects.filter(study=study).values("detail", "worker")))
    phi = [PATIENT_ID, "55120987", "Quimby", "Zoltan", study.study_instance_uid,
           *Scan.objects.filter(study=study).values_list("original_name", flat=True)]
    assert not [p for p in phi if p and p in stored], stored


def test_claim_batch_notes_the_worker_and_a_rerun_clears_it(staff_user, clinic_admin, sent):
    study = b.upload_study(staff_user, 2)
    claimed = services.claim_batch(study.pk, 1, 3, worker="gpu-7@host")
    assert Scan.objects.get(pk=claimed[0].pk).worker == "gpu-7@host"
    assert Scan.objects.exclude(pk=claimed[0].pk).get(study=study).worker == ""
    services.claim_batch(study.pk, 2, 3)  # no Celery hostname: this host's name (a re-claim moves it)
    assert set(Scan.objects.filter(study=study).values_list("worker", flat=True)) == {events.hostname()}
    services.rerun_analysis(study, clinic_admin)
    assert set(Scan.objects.filter(study=study).values_list("worker", flat=True)) == {""}
    assert kinds(study)[-1] == "queued"


def test_a_failed_scan_and_a_failed_study_are_events_with_a_scrubbed_reason(staff_user, sent):
    study = failed_study(staff_user)
    failed = PipelineEvent.objects.filter(study=study, kind=EventKind.FAILED)
    scopes = sorted(e.detail["scope"] for e in failed)
    assert scopes == ["scan", "scan", "study"]
    for e in failed:
        assert "/var/media" not in e.detail["reason"] and ".dcm" not in e.detail["reason"]
        assert "<path>" in e.detail["reason"]


def test_scrub_and_the_key_whitelist(staff_user, sent):
    study = b.upload_study(staff_user, 1)
    e = events.record(study, EventKind.FAILED, reason="bad 1.2.840.10008.5.1.4 in C:\\in\\x.dcm and scan_7.DCM",
                      patient_name="Quimby", seconds=float("nan"), scans=3)
    assert e.detail == {"reason": "bad <uid> in <path> and <file>", "seconds": None, "scans": 3}


def test_an_event_that_cannot_be_written_never_fails_the_step(staff_user, sent, monkeypatch):
    def broken(**kwargs):
        raise DatabaseError("events table gone")

    monkeypatch.setattr(PipelineEvent.objects, "create", broken)
    study = b.upload_study(staff_user, 2)  # the upload's transaction goes on and commits
    assert Study.objects.filter(pk=study.pk).exists() and not PipelineEvent.objects.exists()
    with transaction.atomic():
        assert events.record(study, "no-such-kind") is None
        Study.objects.filter(pk=study.pk).update(description="still usable")


# --- the verbs -----------------------------------------------------------------------------


def test_retry_a_failed_study_reruns_it(staff_user, operator, sent, django_capture_on_commit_callbacks):
    study = failed_study(staff_user)
    with django_capture_on_commit_callbacks(execute=True):
        operations.retry_study(study, user=operator)
    study.refresh_from_db()
    assert study.status == StudyStatus.ANALYZING
    assert set(study.scans.values_list("status", flat=True)) == {ScanStatus.PENDING}
    assert set(study.scans.values_list("attempts", flat=True)) == {0}
    assert Report.objects.current().get(study=study).status == ReportStatus.PROCESSING
    assert (ANALYZE_STUDY, (study.pk,)) in sent
    row = AuditEvent.objects.get(action=AuditAction.RETRY_STUDY)
    assert row.study_id == study.pk and row.actor_id == operator.pk and row.detail["step"] == "rerun"
    op = PipelineEvent.objects.filter(study=study, kind=EventKind.OPERATOR).get()
    assert op.detail == {"action": "rerun", "scans": 2, "via": "portal"}


def test_retry_requeues_the_failed_scans_of_a_finished_study(staff_user, clinic_admin, operator, sent,
                                                             django_capture_on_commit_callbacks):
    report = b.ready_report(staff_user, 2)
    scan = report.study.scans.order_by("pk").first()
    services.mark_failed(scan, clinic_admin, "operator test")
    with django_capture_on_commit_callbacks(execute=True):
        operations.retry_study(report.study, user=operator)
    study = Study.objects.get(pk=report.study_id)
    assert study.status == StudyStatus.ANALYZING
    assert Scan.objects.get(pk=scan.pk).status == ScanStatus.PENDING
    assert Scan.objects.exclude(pk=scan.pk).get(study=study).status == ScanStatus.ANALYZED
    assert sent == [(ANALYZE_STUDY, (study.pk,))]
    assert AuditEvent.objects.get(action=AuditAction.RETRY_STUDY).detail == {"scans": 1, "step": "retry"}


def test_retry_of_a_stuck_study_sends_its_step_again(staff_user, operator, sent, django_capture_on_commit_callbacks):
    report = b.analyse_study(b.upload_study(staff_user, 1))  # explaining, the llm message lost
    with django_capture_on_commit_callbacks(execute=True):
        operations.retry_study(report.study, user=operator)
    assert sent == [(EXPLAIN_REPORT, (report.pk,))]
    assert AuditEvent.objects.get(action=AuditAction.RETRY_STUDY).detail["step"] == "resend explain"


def test_retry_one_scan(staff_user, operator, sent):
    study = failed_study(staff_user)
    scan = study.scans.order_by("pk").first()
    operations.retry_scan(scan, user=operator)
    assert Scan.objects.get(pk=scan.pk).status == ScanStatus.PENDING
    assert Scan.objects.exclude(pk=scan.pk).get(study=study).status == ScanStatus.FAILED
    assert Study.objects.get(pk=study.pk).status == StudyStatus.ANALYZING
    assert AuditEvent.objects.get(action=AuditAction.RETRY_STUDY).detail["scan"] == scan.pk
    with pytest.raises(services.InvalidState, match="not a failed scan"):
        operations.retry_scan(scan, user=operator)


def test_cancel_with_nothing_analysed_fails_the_study_with_the_reason(staff_user, operator, sent):
    study = b.upload_study(staff_user, 3)
    operations.cancel_study(study, user=operator)
    study.refresh_from_db()
    assert study.status == StudyStatus.FAILED
    assert set(study.scans.values_list("status", "skip_reason")) == {(ScanStatus.SKIPPED, operations.CANCEL_REASON)}
    assert Report.objects.current().get(study=study).failure_reason == operations.CANCEL_REASON
    assert AuditEvent.objects.get(action=AuditAction.CANCEL_STUDY).detail == {"scans": 3}
    assert kinds(study)[-2:] == ["operator", "failed"]


def test_cancel_finalises_from_what_is_done(staff_user, operator, sent, django_capture_on_commit_callbacks):
    study = b.upload_study(staff_user, 3)
    first = services.claim_batch(study.pk, 1, 3)
    services.record_analyses([services.ScanResult(first[0].pk, b.slice_result("meningioma"), *b._maps(first[0]))],
                             model_name="test-model", model_version="0123456789ab")
    with django_capture_on_commit_callbacks(execute=True):
        operations.cancel_study(study, user=operator)
    study.refresh_from_db()
    report = Report.objects.current().get(study=study)
    assert study.status == StudyStatus.EXPLAINING and report.label == "meningioma"
    assert study.scans.filter(status=ScanStatus.SKIPPED, skip_reason=operations.CANCEL_REASON).count() == 2
    assert (EXPLAIN_REPORT, (report.pk,)) in sent


def test_the_verbs_refuse_a_signed_study_and_nothing_to_do(staff_user, radiologist, operator, sent):
    report = b.ready_report(staff_user, 1)
    with pytest.raises(services.InvalidState, match="nothing to retry"):
        operations.retry_study(report.study, user=operator)
    with pytest.raises(services.InvalidState, match="nothing to cancel"):
        operations.cancel_study(report.study, user=operator)
    services.sign_report(report, radiologist)
    for verb in (operations.retry_study, operations.cancel_study):
        with pytest.raises(services.InvalidState, match="signed"):
            verb(report.study, user=operator)
    with pytest.raises(services.InvalidState, match="signed"):
        operations.retry_scan(report.study.scans.first(), user=operator)
    assert not AuditEvent.objects.filter(action__in=[AuditAction.RETRY_STUDY, AuditAction.CANCEL_STUDY]).exists()


@pytest.mark.parametrize("who", ["staff_user", "radiologist", "outsider"])
def test_only_operators_and_admins_may_act(request, who, staff_user, sent):
    user = request.getfixturevalue(who)
    study = failed_study(staff_user)
    for verb in (operations.retry_study, operations.cancel_study):
        with pytest.raises(PermissionDenied, match="operators and admins"):
            verb(study, user=user)
    with pytest.raises(PermissionDenied):
        operations.retry_scan(study.scans.first(), user=user)


def test_an_admin_may_act(staff_user, clinic_admin, sent):
    study = failed_study(staff_user)
    operations.retry_study(study, user=clinic_admin)
    assert AuditEvent.objects.get(action=AuditAction.RETRY_STUDY).actor_id == clinic_admin.pk


# --- the queue (selector) ------------------------------------------------------------------


def test_the_queue_lists_in_flight_and_failed_studies_and_flags_stuck_ones(staff_user, sent):
    waiting = b.upload_study(staff_user, 2, seed=10)
    services.claim_batch(waiting.pk, 1, 3, worker="gpu-1@box")
    failed = failed_study(staff_user)
    done = b.ready_report(staff_user, 1, seed=20).study
    rows = {r.study_id: r for r in selectors.operator_queue()}
    assert set(rows) == {waiting.pk, failed.pk}
    assert done.pk not in rows
    w = rows[waiting.pk]
    assert (w.status, w.attempts, w.worker, w.n_pending, w.stuck) == ("analyzing", 1, "gpu-1@box", 2, False)
    assert w.stage == "analysing: 0 of 2 analysed" and w.last_event == "queued"
    f = rows[failed.pk]
    assert f.status == "failed" and "could not read <path>" in f.last_error and not f.stuck
    later = timezone.now() + timedelta(minutes=16)
    rows = {r.study_id: r for r in selectors.operator_queue(now=later)}
    assert rows[waiting.pk].stuck and not rows[failed.pk].stuck  # default 15 min; failed is never stuck
    assert selectors.operator_queue(now=later)[0].study_id == waiting.pk  # stuck first
    assert not {r.study_id: r for r in selectors.operator_queue(now=later, stuck_after_min=30)}[waiting.pk].stuck


def test_research_work_held_outside_its_hours_is_not_stuck(staff_user, settings, sent):
    later = timezone.now() + timedelta(minutes=60)
    hour = timezone.localtime(later).hour
    settings.BRAINAI_RESEARCH_HOURS = f"{(hour + 2) % 24:02d}-{(hour + 3) % 24:02d}"  # closed at ``later``
    study = b.upload_study(staff_user, 1, seed=30)
    Study.objects.filter(pk=study.pk).update(priority="research")
    (row,) = selectors.operator_queue(now=later)
    assert not row.stuck and "held until BRAINAI_RESEARCH_HOURS" in row.stage
    settings.BRAINAI_RESEARCH_HOURS = ""  # any time: then it is stuck
    assert selectors.operator_queue(now=later)[0].stuck


# --- the pages and the API -----------------------------------------------------------------


def test_the_page_shows_the_queue_without_patient_data(operator_client, staff_user, sent):
    study = failed_study(staff_user)
    Study.objects.filter(pk=study.pk).update(description="Quimby head MRI")
    with broker_at(f"redis://127.0.0.1:{free_port()}/0"):
        page = operator_client.get(reverse("scans:operator"))
    html = page.content.decode()
    assert page.status_code == 200
    assert f'id="study-{study.pk}"' in html and "Broker unreachable" in html
    assert "could not read &lt;path&gt;" in html
    assert study.patient.patient_id not in html and "Quimby" not in html
    assert 'href="/operator/"' in html  # the nav link


def test_the_events_page(operator_client, staff_user, sent):
    study = failed_study(staff_user)
    page = operator_client.get(reverse("scans:operator-events", args=[study.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert html.count('data-kind="failed"') == 3 and 'data-kind="received"' in html
    assert study.patient.patient_id not in html
    assert operator_client.get(reverse("scans:operator-events", args=[999999])).status_code == 404


def test_the_actions_post_to_the_verbs(operator_client, staff_user, sent):
    study = failed_study(staff_user)
    response = operator_client.post(reverse("scans:operator-retry", args=[study.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("scans:operator")
    assert Study.objects.get(pk=study.pk).status == StudyStatus.ANALYZING
    operator_client.post(reverse("scans:operator-priority", args=[study.pk]), {"priority": "urgent"})
    assert Study.objects.get(pk=study.pk).priority == "urgent"
    assert AuditEvent.objects.filter(action=AuditAction.CHANGE_PRIORITY, study_id=study.pk).exists()
    operator_client.post(reverse("scans:operator-cancel", args=[study.pk]))
    assert Study.objects.get(pk=study.pk).status == StudyStatus.FAILED
    page = operator_client.post(reverse("scans:operator-cancel", args=[study.pk]), follow=True)
    assert "nothing to cancel" in page.content.decode()


def test_the_actions_need_csrf(client, operator, staff_user, sent):
    from django.test import Client

    study = failed_study(staff_user)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(operator)
    assert strict.post(reverse("scans:operator-retry", args=[study.pk])).status_code == 403
    assert Study.objects.get(pk=study.pk).status == StudyStatus.FAILED


@pytest.mark.parametrize("who", ["staff_user", "radiologist", "outsider"])
def test_pages_and_api_refuse_non_operators(client, request, who, staff_user, sent):
    study = failed_study(staff_user)
    user = request.getfixturevalue(who)
    client.force_login(user)
    for url in (reverse("scans:operator"), reverse("scans:operator-events", args=[study.pk])):
        assert client.get(url).status_code == 403
    for name in ("scans:operator-retry", "scans:operator-cancel", "scans:operator-priority"):
        assert client.post(reverse(name, args=[study.pk]), {"priority": "urgent"}).status_code == 403
    assert client.post(reverse("scans:operator-retry-scan", args=[study.scans.first().pk])).status_code == 403
    assert b.token_client(user).get("/api/v1/operator/queue/").status_code == 403
    assert Study.objects.get(pk=study.pk).status == StudyStatus.FAILED


def test_anonymous_is_sent_to_the_login_page(client, staff_user, sent):
    study = failed_study(staff_user)
    for url in (reverse("scans:operator"), reverse("scans:operator-events", args=[study.pk])):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response["Location"]
    response = client.post(reverse("scans:operator-retry", args=[study.pk]))
    assert response.status_code in (302, 403) and Study.objects.get(pk=study.pk).status == StudyStatus.FAILED
    assert client.get("/api/v1/operator/queue/").status_code == 401


def test_the_api_twin(operator, staff_user, sent):
    study = failed_study(staff_user)
    with broker_at(f"redis://127.0.0.1:{free_port()}/0"):
        body = b.token_client(operator).get("/api/v1/operator/queue/").json()
    assert body["broker_up"] is False and body["lanes"] is None and body["workers"] is None
    (row,) = body["studies"]
    assert row["study_id"] == study.pk and row["status"] == "failed" and row["n_failed"] == 2
    assert row["waiting_s"] >= 0 and "could not read <path>" in row["last_error"]
    assert study.patient.patient_id not in json.dumps(body)


def test_the_api_twin_is_in_the_openapi_schema(clinic_admin):
    schema = b.token_client(clinic_admin).get("/api/v1/schema/?format=json").json()
    assert "/api/v1/operator/queue/" in schema["paths"]


# --- deliveries: sent and failed are events too ---------------------------------------------


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    from tests.pacs import start_orthanc

    server = start_orthanc(tmp_path_factory.mktemp("pacs"))
    yield server
    server.stop()


def _dicom_ready(user, study_uid: str):
    files = [b.upload("im1.dcm", b.dicom_bytes(study_uid=study_uid, series_uid=study_uid + ".1",
                                              sop_uid=study_uid + ".1.1"))]
    study = services.register_upload(user, files, {}).studies[0]
    return b.explain_and_finalize(b.analyse_study(study))


def test_a_delivery_sent_and_one_failed_are_events_without_uids(staff_user, orthanc, settings, sent):
    from scans.models import Destination, DestinationKind

    settings.BRAINAI_DELIVERY_MAX_ATTEMPTS = 1
    good = Destination.objects.create(name="pacs", kind=DestinationKind.CSTORE, ae_title="TESTPACS",
                                      host="127.0.0.1", port=orthanc.dicom_port)
    bad = Destination.objects.create(name="down", kind=DestinationKind.CSTORE, ae_title="DOWN",
                                     host="127.0.0.1", port=free_port())
    report = _dicom_ready(staff_user, "1.2.826.0.1.3680043.8.498.6160")
    for delivery in report.deliveries.all():
        services.send_delivery(delivery.pk)
    sent_event = PipelineEvent.objects.get(study=report.study, kind=EventKind.SENT)
    assert sent_event.detail["destination"] == good.pk and sent_event.detail["files"] >= 1
    failed = PipelineEvent.objects.get(study=report.study, kind=EventKind.FAILED)
    assert failed.detail["scope"] == "delivery" and failed.detail["destination"] == bad.pk
    assert failed.detail["reason"]
    stored = json.dumps([sent_event.detail, failed.detail])
    assert "1.2.826.0.1.3680043" not in stored and "127.0.0.1" not in stored


def test_an_operator_who_opens_a_clinic_page_lands_on_the_operator_view(operator_client, ready_report):
    """An operator has no clinic role: a GET of the worklist or a report sends them to
    /operator/ (no patient data shown), and a POST is still refused."""
    for url in (reverse("scans:worklist"), reverse("scans:report", args=[ready_report.pk])):
        response = operator_client.get(url)
        assert response.status_code == 302 and response["Location"] == reverse("scans:operator")
    assert operator_client.post(reverse("scans:report", args=[ready_report.pk])).status_code == 403
