"""Notifications through the real queue: the Celery worker (queue ``outbound``) posts signed
webhooks to an http.server on loopback and mails through Django's SMTP backend to an
aiosmtpd server on loopback (the worker's EMAIL_* and retry delay: tests/e2e/conftest.py).

- a study reaching awaiting_review notifies both targets; signing and amending notify;
  a study that fails notifies;
- the target: both receivers down (ports closed) until every notification has failed at
  least once, then up: every notification ends sent, none lost, none duplicated, counted
  at the receivers by notification id.
"""
from __future__ import annotations

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse

from brainai_site.celery import app
from scans import services
from scans.models import Notification, NotificationStatus, NotificationTarget, NotifyEvent, Report, ReportStatus, TargetKind
from tests import builders as b
from tests.builders import token_client
from tests.e2e.conftest import E2E_SMTP_PORT
from tests.receivers import SmtpReceiver, WebhookReceiver

pytestmark = [pytest.mark.e2e]

SECRET = "e2e-notification-secret-0123456789"
PATIENT_NAME = "Ignatius Wolfenden"
PATIENT_ID = "MRN-NOTIFY-5512"


def _targets(hook: WebhookReceiver, hooks: int = 1, mails: int = 1) -> list[NotificationTarget]:
    return ([NotificationTarget.objects.create(name=f"hook {i}", kind=TargetKind.WEBHOOK, url=hook.url, secret=SECRET)
             for i in range(hooks)]
            + [NotificationTarget.objects.create(name=f"mail {i}", kind=TargetKind.EMAIL, emails=f"ward{i}@clinic.test")
               for i in range(mails)])


def _all_sent(expected: int):
    def check():
        statuses = list(Notification.objects.values_list("status", flat=True))
        return len(statuses) == expected and set(statuses) == {NotificationStatus.SENT}
    return check


def test_review_sign_amend_and_failure_reach_the_webhook_and_the_mailbox(
        pipeline, staff_user, radiologist, clinic_admin, wait_for):
    with WebhookReceiver(SECRET) as hook, SmtpReceiver(port=E2E_SMTP_PORT) as smtp:
        _targets(hook)
        api = token_client(staff_user)
        ids = []
        for seed, patient in ((0, PATIENT_ID), (1, PATIENT_ID + "-B")):
            response = api.post("/api/v1/uploads/", {"files": [b.upload(f"n{seed}.jpg", b.brain_jpegs(1, start=seed)[0])],
                                                     "patient_id": patient, "patient_name": PATIENT_NAME},
                                format="multipart")
            assert response.status_code == 202, response.content
            ids.append(response.json()["studies"][0]["id"])
        wait_for(lambda: Report.objects.current().filter(study_id__in=ids, status=ReportStatus.AWAITING_REVIEW
                                                         ).count() == 2, timeout=300, what="both reports to await review")
        wait_for(_all_sent(4), timeout=60, what="the awaiting_review notifications sent")

        first, second = (Report.objects.current().get(study_id=i) for i in ids)
        radiologist_api = token_client(radiologist)
        assert radiologist_api.post(f"/api/v1/reports/{first.pk}/sign/", {}, format="json").status_code == 200
        amend = radiologist_api.post(f"/api/v1/reports/{first.pk}/amend/",
                                     {"findings": "Re-read.", "impression": "Unchanged."}, format="json")
        assert amend.status_code == 201, amend.content
        admin = Client()
        admin.force_login(clinic_admin)
        admin.post(reverse("admin:scans_study_changelist"),
                   {"action": "mark_failed", "_selected_action": [second.study_id], "reason": "duplicate"})
        wait_for(_all_sent(10), timeout=60, what="every notification sent")

        events = {(n.study_id, n.event, n.report_version) for n in Notification.objects.all()}
        assert events == {
            (ids[0], "awaiting_review", 1), (ids[0], "signed", 1), (ids[0], "amended", 2),
            (ids[1], "awaiting_review", 1), (ids[1], "failed", 1)}
        webhook_ids = set(Notification.objects.filter(target__kind=TargetKind.WEBHOOK).values_list("pk", flat=True))
        mail_ids = set(Notification.objects.filter(target__kind=TargetKind.EMAIL).values_list("pk", flat=True))
        assert hook.ids() == {i: 1 for i in webhook_ids}  # every one signed correctly, once
        assert smtp.ids() == {i: 1 for i in mail_ids}
        everything = b"".join(h.body for h in hook.hooks) + b"".join(m.as_bytes() for m in smtp.messages)
        for secret in (PATIENT_NAME, "Wolfenden", PATIENT_ID, "n0.jpg", first.study.study_instance_uid):
            assert secret.encode() not in everything, f"{secret!r} was sent in a notification"


N_STUDIES = 4  # x 2 webhook targets + 2 e-mail targets = 16 notifications


def test_receivers_down_then_up_lose_nothing_and_duplicate_nothing(pipeline, staff_user, wait_for):
    # The reports are built by hand, their pipeline tasks captured (the worker would analyse
    # them again); only the notifications go to the real broker and worker.
    captured = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(app, "send_task", lambda name, args=None, **kw: captured.append(name))
        reports = [b.ready_report(staff_user, 1, seed=200 + i, patient_id=f"P-DOWN-{i}") for i in range(N_STUDIES)]
    hook = WebhookReceiver(SECRET)  # its port stays closed for now
    smtp = SmtpReceiver(port=E2E_SMTP_PORT)  # not started: connections refused
    _targets(hook, hooks=2, mails=2)
    expected = N_STUDIES * 4
    with transaction.atomic():
        for report in reports:
            services.notify(report.study, NotifyEvent.AWAITING_REVIEW, report)
    try:
        # Down until every notification has failed at least once (no clock decides this).
        wait_for(lambda: Notification.objects.filter(attempts__gte=2).count() == expected, timeout=300,
                 what="every notification to fail against the closed ports")
        assert set(Notification.objects.values_list("status", flat=True)) == {NotificationStatus.PENDING}
        assert all("refused" in r.lower() or "ConnectError" in r
                   for r in Notification.objects.values_list("reason", flat=True))
        hook.start()
        smtp.start()
        wait_for(_all_sent(expected), timeout=120, what="every notification sent once the receivers are up")
    finally:
        hook.stop()
        smtp.stop()

    webhook_ids = set(Notification.objects.filter(target__kind=TargetKind.WEBHOOK).values_list("pk", flat=True))
    mail_ids = set(Notification.objects.filter(target__kind=TargetKind.EMAIL).values_list("pk", flat=True))
    got = hook.ids() + smtp.ids()
    lost = (webhook_ids | mail_ids) - set(got)
    duplicated = {i: n for i, n in got.items() if n > 1}
    assert (len(webhook_ids | mail_ids), len(lost), len(duplicated)) == (expected, 0, 0), (lost, duplicated)
    assert len(hook.hooks) == len(webhook_ids) and all(h.signed for h in hook.hooks)
    assert min(Notification.objects.values_list("attempts", flat=True)) >= 3  # sent on a retry, not the first try
