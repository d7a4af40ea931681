"""Telling people that a report is ready, signed, amended or failed: webhooks and e-mails.

    notify(study, event, report)     called where the report moves (finalize_report, sign_report,
                                     amend_report, and a study that fails): one Notification per
                                     enabled target that wants the event, sent on commit (queue
                                     ``outbound``); once per target, study, event and report version
    send_notification(id)            one attempt: a signed JSON POST, or an e-mail through
                                     django.core.mail; pending again (retry later), sent or failed
    resend_notification(n, user)     an admin sends a notification again; audited

Messages carry no patient data: the patient and study fields say "UNKNOWN" (as mercure does
without ``phi_notifications``) unless the target's ``include_phi`` is on; they are filled in
at send time, so the stored payload (the delivery log) never holds them. The e-mail subject
never carries them. Webhook bodies are signed: ``X-BrainAI-Signature: sha256=<hex>``, the
HMAC-SHA256 with the target's secret of ``<X-BrainAI-Timestamp>.<raw body>``
(docs/integration.md "Notifications" has the receiver's check).

Attempts are counted per notification in the database (committed before the send, so a
worker that dies mid-send counts it); the next one is due after ``retry_delay``; after
BRAINAI_NOTIFY_MAX_ATTEMPTS it is failed with the last error. Delivery is at least once: a
receiver that answered but whose answer was lost gets the message again, with the same
``notification_id`` to drop it by. Notification.status has one writer, state.move_notification.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import time
from datetime import timedelta

import httpx
from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from scans.models import (
    AuditAction, Notification, NotificationStatus, NotificationTarget, NotifyEvent, Report, Study, TargetKind, Via,
)
from scans.services import state
from scans.services.audit import audit
from scans.services.errors import InvalidState, PermissionDenied
from scans.services.queue import SEND_NOTIFICATION, enqueue

logger = logging.getLogger(__name__)

SCHEMA = "brainai.notification/1"
NOTICE = "Decision support, not for diagnostic use."
UNKNOWN = "UNKNOWN"
SIGNATURE_HEADER = "X-BrainAI-Signature"
TIMESTAMP_HEADER = "X-BrainAI-Timestamp"
USER_AGENT = "BrainAI-notifications/1"


# --- what is sent ----------------------------------------------------------------------------

def build_payload(study: Study, event: str, report: Report | None) -> dict:
    """The message without patient data: ids, statuses, the finding, timestamps and the
    report's link; every patient or study identifier is UNKNOWN (filled at send time for a
    target with ``include_phi``)."""
    def iso(value):
        return value.isoformat() if value else None

    payload = {
        "schema": SCHEMA,
        "event": str(event),
        "event_at": timezone.now().isoformat(),
        "notice": NOTICE,
        "study_id": study.pk,
        "study_status": study.status,
        "priority": study.priority,
        "report_id": report.pk if report else None,
        "report_version": report.version if report else None,
        "status": report.status if report else study.status,
        "label": (report.label if report else "") or None,
        "finding": report.get_label_display() if report and report.label else None,
        "confidence": report.confidence if report else None,
        "model": report.model_name if report else "",
        "model_version": report.model_version if report else "",
        "report_created_at": iso(report.created_at) if report else None,
        "signed_at": iso(report.signed_at) if report else None,
        "report_url": settings.BRAINAI_PORTAL_URL + reverse("scans:report", args=[report.pk]) if report else None,
        "patient": {"name": UNKNOWN, "id": UNKNOWN, "birth_date": UNKNOWN},
        "study": {"instance_uid": UNKNOWN, "description": UNKNOWN, "date": UNKNOWN},
    }
    if str(event) == NotifyEvent.FAILED:
        payload["failure_reason"] = UNKNOWN  # free text (a typed reason, error messages): patient data
    return payload


def message_of(notification: Notification) -> dict:
    """What goes out: the stored payload, the notification's id and attempt, and, for a
    target with ``include_phi`` only, the patient and study fields."""
    message = {**notification.payload, "notification_id": notification.pk, "attempt": notification.attempts}
    if notification.target.include_phi:
        study = notification.study
        patient = study.patient
        message["patient"] = {"name": patient.name or UNKNOWN, "id": patient.patient_id or UNKNOWN,
                              "birth_date": patient.birth_date.isoformat() if patient.birth_date else UNKNOWN}
        message["study"] = {"instance_uid": study.study_instance_uid or UNKNOWN,
                            "description": study.description or UNKNOWN,
                            "date": study.study_date.isoformat() if study.study_date else UNKNOWN}
        if "failure_reason" in message:
            report = study.reports.filter(version=notification.report_version).first()
            message["failure_reason"] = (report.failure_reason if report else "") or UNKNOWN
    return message


def encode(message: dict) -> bytes:
    """The raw body: compact JSON, keys sorted (what the signature covers)."""
    return json.dumps(message, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 with ``secret`` of ``<timestamp>.<body>``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={mac}"


def subject_of(message: dict) -> str:
    """The e-mail subject: the event and ids, never patient data."""
    what = NotifyEvent(message["event"]).label
    version = f" v{message['report_version']}" if message.get("report_version") else ""
    return f"[BrainAI] {what}: study {message['study_id']}{version}"


def email_text(message: dict) -> str:
    lines = [f"BrainAI: {NotifyEvent(message['event']).label}", message["notice"], ""]
    lines.append(f"Study {message['study_id']} ({message['priority']}), report {message['report_id']} "
                 f"version {message['report_version']}: {message['status']}")
    if message.get("finding"):
        confidence = message.get("confidence")
        lines.append(f"AI finding: {message['finding']}" + (f" (confidence {confidence:.2f})" if confidence else ""))
    if "failure_reason" in message:
        lines.append(f"Reason: {message['failure_reason']}")
    patient, study = message["patient"], message["study"]
    lines.append(f"Patient: {patient['name']}, id {patient['id']}, born {patient['birth_date']}")
    lines.append(f"Study: {study['description']} of {study['date']}, UID {study['instance_uid']}")
    if message.get("report_url"):
        lines.append(f"Open in the portal: {message['report_url']}")
    lines += [f"Sent {message['event_at']} (notification {message['notification_id']}, "
              f"attempt {message['attempt']}).", "", "-- the same as JSON --", encode(message).decode()]
    return "\n".join(lines) + "\n"


# --- queueing --------------------------------------------------------------------------------

def wants(target: NotificationTarget, event: str) -> bool:
    return target.enabled and (not target.events or str(event) in target.events)


def notify(study: Study, event: str, report: Report | None = None) -> list[Notification]:
    """Create (and on commit queue) one Notification per enabled target that wants ``event``;
    call inside the transaction that moved the report. Returns the ones created: a second
    call for the same target, study, event and report version creates none."""
    targets = [t for t in NotificationTarget.objects.filter(enabled=True) if wants(t, event)]
    if not targets:
        return []
    payload = build_payload(study, event, report)
    created = []
    for target in targets:
        notification, new = Notification.objects.get_or_create(
            target=target, study=study, event=event, report_version=report.version if report else None,
            defaults={"payload": payload})
        if new:
            enqueue(SEND_NOTIFICATION, notification.pk)
            created.append(notification)
    return created


# --- sending ---------------------------------------------------------------------------------

def retry_delay(notification: Notification) -> float:
    """Seconds before the next attempt: BRAINAI_NOTIFY_RETRY_S, doubling per attempt."""
    return settings.BRAINAI_NOTIFY_RETRY_S * 2 ** max(notification.attempts - 1, 0)


def _count_attempt(notification_id: int) -> Notification | None:
    """Count one attempt (committed before sending); None when the notification is not
    pending, or its next attempt is not due yet."""
    with transaction.atomic():
        notification = (Notification.objects.select_for_update().select_related("target", "study__patient")
                        .filter(pk=notification_id).first())
        if notification is None or notification.status != NotificationStatus.PENDING:
            return None
        if notification.attempts and timezone.now() < notification.updated_at + timedelta(
                seconds=retry_delay(notification)):
            return None  # a second copy of the task (requeue, sweep) before the retry is due
        notification.attempts += 1
        notification.save(update_fields=["attempts", "updated_at"])
        return notification


def _post(target: NotificationTarget, message: dict) -> str:
    """POST the signed message; "" when the receiver answered 2xx, else the reason."""
    if not target.secret:
        return "the webhook target has no HMAC secret; set one in the admin"
    body = encode(message)
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
               "X-BrainAI-Event": message["event"], "X-BrainAI-Notification": str(message["notification_id"]),
               TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature(target.secret, timestamp, body)}
    try:
        response = httpx.post(target.url, content=body, headers=headers, timeout=settings.BRAINAI_NOTIFY_TIMEOUT_S,
                              follow_redirects=False)
    except httpx.HTTPError as exc:  # refused, reset, timed out, bad URL: the exception names no address
        return f"{type(exc).__name__}: {exc}"[:500]
    return "" if 200 <= response.status_code < 300 else f"the receiver answered HTTP {response.status_code}"


def _mail(target: NotificationTarget, message: dict) -> str:
    """Send the e-mail; "" when the server took it, else the reason."""
    recipients = [a.strip() for a in target.emails.split(",") if a.strip()]
    if not recipients:
        return "the e-mail target has no recipients"
    email = EmailMessage(subject_of(message), email_text(message), settings.DEFAULT_FROM_EMAIL, recipients,
                         headers={"X-BrainAI-Notification": str(message["notification_id"]),
                                  "X-BrainAI-Event": message["event"]})
    try:
        email.send(fail_silently=False)
    except smtplib.SMTPRecipientsRefused as exc:  # its text lists the addresses
        return f"SMTPRecipientsRefused: the server refused {len(exc.recipients)} recipients"
    except smtplib.SMTPSenderRefused as exc:
        return f"SMTPSenderRefused: {exc.smtp_code}"
    except Exception as exc:  # smtplib.SMTPException, OSError, or whatever another backend raises
        return f"{type(exc).__name__}: {exc}"[:500]
    return ""


def send_notification(notification_id: int) -> Notification | None:
    """One attempt at a pending notification; None when there is nothing to send (already
    sent, failed, gone, or the next attempt not due yet: safe to run twice).

    Returns the notification: ``sent``; ``failed`` with the reason once it has had
    BRAINAI_NOTIFY_MAX_ATTEMPTS (or its target is disabled); else still ``pending`` with the
    reason, for the caller to try again after ``retry_delay``.
    """
    notification = _count_attempt(notification_id)
    if notification is None:
        return None
    target = notification.target
    if not target.enabled:
        reason, final = "the target is disabled", True
    else:
        message = message_of(notification)
        reason = _post(target, message) if target.kind == TargetKind.WEBHOOK else _mail(target, message)
        final = notification.attempts >= settings.BRAINAI_NOTIFY_MAX_ATTEMPTS
    with transaction.atomic():
        notification = Notification.objects.select_for_update().select_related("target").get(pk=notification.pk)
        if reason == "":
            state.move_notification(notification, NotificationStatus.SENT, reason="", sent_at=timezone.now())
            logger.info("notification %s (%s) sent to target %s, attempt %d", notification.pk, notification.event,
                        notification.target_id, notification.attempts)
        elif final:
            state.move_notification(notification, NotificationStatus.FAILED,
                                    reason=f"gave up after {notification.attempts} attempts; last error: {reason}"[:2000])
            logger.warning("notification %s failed for good after %d attempts", notification.pk, notification.attempts)
        else:
            state.move_notification(notification, NotificationStatus.PENDING, reason=reason[:2000])
    return notification


def resend_notification(notification: Notification, user, *, via: Via = Via.ADMIN) -> Notification:
    """Send a sent (or failed) notification again with a fresh count of attempts; admins only.
    The receiver gets the same ``notification_id`` again."""
    if user is None or not user.is_staff:
        raise PermissionDenied("only an admin may send a notification again")
    with transaction.atomic():
        notification = Notification.objects.select_for_update().select_related("study").get(pk=notification.pk)
        if notification.status == NotificationStatus.PENDING:
            raise InvalidState(f"notification {notification.pk} is already waiting to be sent")
        state.move_notification(notification, NotificationStatus.PENDING, attempts=0, reason="", sent_at=None)
        audit(AuditAction.RESEND_NOTIFICATION, user, via=via, study=notification.study,
              notification=notification.pk, target=notification.target_id, event=notification.event)
        enqueue(SEND_NOTIFICATION, notification.pk)
    return notification
