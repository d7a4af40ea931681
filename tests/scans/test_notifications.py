"""Notifications (scans.services.notifications) against real receivers on loopback: a
webhook endpoint (http.server) that checks the HMAC itself, and Django's SMTP backend
talking to an aiosmtpd server. The worker's retry loop is in
tests/e2e/test_notifications_e2e.py; here each attempt is driven by hand."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.db.models import F
from django.test import Client
from django.urls import reverse

from scans import services
from scans.models import (
    AuditAction, AuditEvent, Notification, NotificationStatus, NotificationTarget, NotifyEvent, TargetKind,
)
from tests import builders as b
from tests.broker import free_port
from tests.receivers import SmtpReceiver, WebhookReceiver, signature_ok

pytestmark = pytest.mark.django_db

SECRET = "s3cret-for-the-tests-0123456789"
TASK = "workers.tasks.send_notification"
# What the study is uploaded with; none of it may reach a receiver unless include_phi.
PHI = {"patient_id": b.PATIENT_ID, "patient_name": b.PATIENT_NAME, "patient_birth_date": "1957-03-14",
       "study_description": "MRI BRAIN QUIMBY FOLLOW-UP", "study_date": "2024-02-29"}
NEEDLES = (b.PATIENT_ID, "88412379", "Quimby", "Zoltan", "1957-03-14", "19570314", "QUIMBY", "2024-02-29")


def _no_phi(text: str) -> list[str]:
    return [n for n in NEEDLES if n.lower() in text.lower()]


def _webhook(url: str, **fields) -> NotificationTarget:
    return NotificationTarget.objects.create(**{"name": "hook", "kind": TargetKind.WEBHOOK, "url": url,
                                                "secret": SECRET, **fields})


def _mailbox(**fields) -> NotificationTarget:
    return NotificationTarget.objects.create(**{"name": "mail", "kind": TargetKind.EMAIL,
                                                "emails": "neuro@clinic.test, triage@clinic.test", **fields})


def _report(user, **fields):
    return b.ready_report(user, **{**PHI, **fields})


def _age(notification, seconds):
    """As if ``seconds`` had passed since the notification's last attempt."""
    Notification.objects.filter(pk=notification.pk).update(updated_at=F("updated_at") - timedelta(seconds=seconds + 1))


@pytest.fixture
def hook():
    with WebhookReceiver(SECRET) as receiver:
        yield receiver


@pytest.fixture
def smtp(settings):
    with SmtpReceiver() as receiver:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", receiver.port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        yield receiver


def test_a_report_ready_for_review_queues_one_notification_per_target_that_wants_it(
        staff_user, sent, django_capture_on_commit_callbacks):
    webhook = _webhook("http://127.0.0.1:9/hook")
    mail = _mailbox()
    NotificationTarget.objects.create(name="off", kind=TargetKind.EMAIL, emails="x@clinic.test", enabled=False)
    NotificationTarget.objects.create(name="signed only", kind=TargetKind.EMAIL, emails="y@clinic.test",
                                      events=[NotifyEvent.SIGNED])

    with django_capture_on_commit_callbacks(execute=True):
        report = _report(staff_user)

    created = Notification.objects.filter(study=report.study)
    assert {(n.target_id, n.event, n.report_version, n.status) for n in created} == {
        (webhook.pk, "awaiting_review", 1, "pending"), (mail.pk, "awaiting_review", 1, "pending")}
    assert sorted(call for call in sent if call[0] == TASK) == sorted((TASK, (n.pk,)) for n in created)
    # Once per target, study, event and version: a second call creates and queues nothing.
    assert services.notify(report.study, NotifyEvent.AWAITING_REVIEW, report) == []
    assert created.count() == 2


def test_the_webhook_is_signed_and_carries_no_patient_data(staff_user, hook):
    target = _webhook(hook.url)
    report = _report(staff_user)
    notification = Notification.objects.get(target=target)

    done = services.send_notification(notification.pk)

    assert done.status == NotificationStatus.SENT and done.attempts == 1 and done.sent_at is not None
    [got] = hook.hooks
    assert got.signed, got.headers  # checked by the receiver from the documented contract
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["X-BrainAI-Event"] == "awaiting_review"
    assert _no_phi(got.body.decode()) == []
    message = got.message
    assert message["notification_id"] == notification.pk and message["attempt"] == 1
    assert (message["event"], message["study_id"], message["report_id"], message["report_version"]) == (
        "awaiting_review", report.study_id, report.pk, 1)
    assert message["status"] == "awaiting_review" and message["label"] == "glioma"
    assert message["finding"] == "Glioma" and message["notice"] == "Decision support, not for diagnostic use."
    assert message["patient"] == {"name": "UNKNOWN", "id": "UNKNOWN", "birth_date": "UNKNOWN"}
    assert message["study"] == {"instance_uid": "UNKNOWN", "description": "UNKNOWN", "date": "UNKNOWN"}
    assert message["report_url"] == f"{django_settings.BRAINAI_PORTAL_URL}/reports/{report.pk}/"
    # The signature covers the timestamp and every byte of the body.
    assert not signature_ok("another secret", got.headers, got.body)
    assert not signature_ok(SECRET, got.headers, got.body.replace(b"glioma", b"notumor"))
    assert not signature_ok(SECRET, {**got.headers, "X-BrainAI-Timestamp": str(int(got.at) - 3600)}, got.body)
    # The stored payload (the delivery log) holds no patient data either.
    assert _no_phi(json.dumps(Notification.objects.get(pk=notification.pk).payload)) == []


def test_a_target_with_include_phi_gets_the_patient(staff_user, hook):
    target = _webhook(hook.url, include_phi=True)
    report = _report(staff_user)
    services.send_notification(Notification.objects.get(target=target).pk)

    message = hook.hooks[0].message
    assert message["patient"] == {"name": report.study.patient.name, "id": b.PATIENT_ID, "birth_date": "1957-03-14"}
    assert "Quimby" in message["patient"]["name"]
    assert message["study"]["description"] == PHI["study_description"]
    assert message["study"]["date"] == "2024-02-29"
    assert message["study"]["instance_uid"] == report.study.study_instance_uid
    assert _no_phi(json.dumps(Notification.objects.get(target=target).payload)) == []  # filled at send time only


def test_e_mail_goes_through_django_smtp_backend_without_patient_data(staff_user, smtp):
    target = _mailbox()
    phi_target = _mailbox(name="phi mail", emails="records@clinic.test", include_phi=True)
    report = _report(staff_user)

    for t in (target, phi_target):
        assert services.send_notification(Notification.objects.get(target=t).pk).status == NotificationStatus.SENT

    assert len(smtp.messages) == 2
    by_to = {m["To"]: m for m in smtp.messages}
    plain, with_phi = by_to["neuro@clinic.test, triage@clinic.test"], by_to["records@clinic.test"]
    assert plain["Subject"] == f"[BrainAI] Report awaiting review: study {report.study_id} v1"
    assert plain["From"] == django_settings.DEFAULT_FROM_EMAIL
    assert _no_phi(plain.as_string()) == []
    text = plain.get_payload(decode=True).decode()
    assert "Decision support, not for diagnostic use." in text and f"/reports/{report.pk}/" in text
    assert "Patient: UNKNOWN" in text
    assert int(plain["X-BrainAI-Notification"]) == Notification.objects.get(target=target).pk
    # include_phi: the body names the patient; the subject never does.
    assert report.study.patient.name in with_phi.get_payload(decode=True).decode()
    assert sorted(rcpt for _, rcpts in smtp.envelopes for rcpt in rcpts) == [
        "neuro@clinic.test", "records@clinic.test", "triage@clinic.test"]
    assert _no_phi(with_phi["Subject"]) == []


def test_a_mail_server_that_refuses_the_recipients_is_a_failed_attempt_whose_reason_names_none(
        staff_user, settings):
    with SmtpReceiver(refuse=("ghost@clinic.test",)) as smtp:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp.port
        target = _mailbox(emails="ghost@clinic.test")
        _report(staff_user)
        done = services.send_notification(Notification.objects.get(target=target).pk)
    assert done.status == NotificationStatus.PENDING and smtp.messages == []
    assert done.reason == "SMTPRecipientsRefused: the server refused 1 recipients"


def test_a_receiver_that_is_down_is_retried_with_backoff_then_given_up_on_with_the_reason(staff_user, settings):
    settings.BRAINAI_NOTIFY_MAX_ATTEMPTS = 3
    target = _webhook(f"http://127.0.0.1:{free_port()}/hook")  # nothing listens
    _report(staff_user)
    notification = Notification.objects.get(target=target)

    first = services.send_notification(notification.pk)
    assert first.status == NotificationStatus.PENDING and first.attempts == 1 and "ConnectError" in first.reason
    assert services.notifications.retry_delay(first) == settings.BRAINAI_NOTIFY_RETRY_S
    assert services.send_notification(notification.pk) is None  # a second copy before the retry is due
    _age(notification, settings.BRAINAI_NOTIFY_RETRY_S)
    second = services.send_notification(notification.pk)
    assert second.attempts == 2 and services.notifications.retry_delay(second) == 2 * settings.BRAINAI_NOTIFY_RETRY_S
    _age(notification, 2 * settings.BRAINAI_NOTIFY_RETRY_S)
    third = services.send_notification(notification.pk)
    assert third.status == NotificationStatus.FAILED and third.attempts == 3
    assert third.reason.startswith("gave up after 3 attempts; last error: ConnectError")
    assert services.send_notification(notification.pk) is None  # failed: nothing more is tried


def test_a_receiver_that_answers_an_error_is_retried_and_a_receiver_back_up_gets_it_once(staff_user, settings):
    receiver = WebhookReceiver(SECRET, status=503).start()
    try:
        target = _webhook(receiver.url)
        _report(staff_user)
        notification = Notification.objects.get(target=target)
        first = services.send_notification(notification.pk)
        assert first.status == NotificationStatus.PENDING and first.reason == "the receiver answered HTTP 503"
        receiver.stop()  # now down altogether
        _age(notification, settings.BRAINAI_NOTIFY_RETRY_S)
        assert "ConnectError" in services.send_notification(notification.pk).reason
        receiver.status = 200
        receiver.start()  # back up, same port
        _age(notification, 2 * settings.BRAINAI_NOTIFY_RETRY_S)
        assert services.send_notification(notification.pk).status == NotificationStatus.SENT
    finally:
        receiver.stop()
    assert [h.message["attempt"] for h in receiver.hooks] == [1, 3]  # the attempt while down never arrived
    assert receiver.ids() == {notification.pk: 2}  # one refused with 503, one taken


def test_sign_amend_and_failure_each_notify_with_their_version(staff_user, radiologist, clinic_admin, hook):
    _webhook(hook.url)
    report = _report(staff_user)
    signed = services.sign_report(report, radiologist, findings="Mass.", impression="Glioma likely.")
    amended = services.amend_report(signed, radiologist, "Mass, left.", "Glioma likely; see MRI.")
    failing = b.upload_study(staff_user, 1, seed=70, patient_id="P-FAIL")
    services.mark_failed(failing, clinic_admin, f"wrong patient {b.PATIENT_NAME}")

    rows = {(n.study_id, n.event, n.report_version) for n in Notification.objects.all()}
    assert rows == {(report.study_id, "awaiting_review", 1), (report.study_id, "signed", 1),
                    (report.study_id, "amended", 2), (failing.pk, "failed", 1)}
    for n in Notification.objects.all():
        assert services.send_notification(n.pk).status == NotificationStatus.SENT
    by_event = {h.message["event"]: h.message for h in hook.hooks}
    assert by_event["signed"]["status"] == "signed" and by_event["signed"]["signed_at"]
    assert by_event["amended"]["report_id"] == amended.pk and by_event["amended"]["report_version"] == 2
    assert by_event["failed"]["status"] == "failed" and by_event["failed"]["failure_reason"] == "UNKNOWN"
    assert all(h.signed for h in hook.hooks) and _no_phi(b"".join(h.body for h in hook.hooks).decode()) == []


def test_the_events_list_chooses_what_a_target_is_told(staff_user, radiologist, hook):
    target = _webhook(hook.url, events=[NotifyEvent.SIGNED])
    report = _report(staff_user)
    assert not Notification.objects.filter(target=target).exists()
    services.sign_report(report, radiologist)
    assert list(Notification.objects.filter(target=target).values_list("event", flat=True)) == ["signed"]


def test_an_admin_resends_through_the_verb_audited_and_others_may_not(
        staff_user, radiologist, clinic_admin, hook, sent, django_capture_on_commit_callbacks):
    target = _webhook(hook.url)
    report = _report(staff_user)
    notification = Notification.objects.get(target=target)
    services.send_notification(notification.pk)
    with pytest.raises(services.PermissionDenied):
        services.resend_notification(notification, radiologist)

    admin = Client()
    admin.force_login(clinic_admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(reverse("admin:scans_notification_changelist"),
                              {"action": "resend", "_selected_action": [notification.pk]}, follow=True)
    assert response.status_code == 200
    again = Notification.objects.get(pk=notification.pk)
    assert again.status == NotificationStatus.PENDING and again.attempts == 0 and again.sent_at is None
    assert (TASK, (notification.pk,)) in sent
    event = AuditEvent.objects.get(action=AuditAction.RESEND_NOTIFICATION)
    assert event.study_id == report.study_id and event.detail["notification"] == notification.pk
    with pytest.raises(services.InvalidState):  # already waiting
        services.resend_notification(again, clinic_admin)
    assert services.send_notification(notification.pk).status == NotificationStatus.SENT
    assert hook.ids() == {notification.pk: 2}


def test_the_sweep_sends_again_pending_notifications_the_broker_lost(staff_user, sent):
    target = _webhook("http://127.0.0.1:9/hook")
    _report(staff_user)
    notification = Notification.objects.get(target=target)

    counts = services.requeue_stalled()

    assert counts["notify"] == 1 and (TASK, (notification.pk,)) in sent


def test_sending_runs_on_the_outbound_queue():
    assert django_settings.CELERY_TASK_ROUTES[TASK] == {"queue": "outbound"}


def test_the_admin_never_shows_the_secret_and_keeps_it_when_left_empty(clinic_admin):
    admin = Client()
    admin.force_login(clinic_admin)
    add = reverse("admin:scans_notificationtarget_add")
    refused = admin.post(add, {"name": "hook", "kind": "webhook", "enabled": "on", "url": "http://127.0.0.1:9/h"})
    assert refused.status_code == 200 and b"A webhook needs an HMAC secret." in refused.content
    assert admin.post(add, {"name": "hook", "kind": "webhook", "enabled": "on", "url": "http://127.0.0.1:9/h",
                            "secret": SECRET, "events": ["signed", "amended"]}).status_code == 302
    target = NotificationTarget.objects.get(name="hook")
    assert target.secret == SECRET and target.events == ["signed", "amended"]

    change = reverse("admin:scans_notificationtarget_change", args=[target.pk])
    page = admin.get(change)
    assert page.status_code == 200 and SECRET.encode() not in page.content
    assert admin.post(change, {"name": "hook", "kind": "webhook", "enabled": "on", "url": "https://h.test/x",
                               "secret": ""}).status_code == 302
    target.refresh_from_db()
    assert target.secret == SECRET and target.url == "https://h.test/x" and target.events == []
    bad_mail = admin.post(add, {"name": "m", "kind": "email", "emails": "ok@clinic.test, not-an-address"})
    assert b"Not an e-mail address: not-an-address" in bad_mail.content
    assert admin.get(reverse("admin:scans_notification_changelist"), {"status": "failed", "event": "signed"}
                     ).status_code == 200
