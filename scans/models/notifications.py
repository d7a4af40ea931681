"""Who is told when a report is ready, signed, amended or failed (webhook or e-mail), and
what became of each message."""
from django.db import models

from scans.models.clinical import Study


class NotifyEvent(models.TextChoices):
    AWAITING_REVIEW = "awaiting_review", "Report awaiting review"
    SIGNED = "signed", "Report signed"
    AMENDED = "amended", "Report amended"
    FAILED = "failed", "Study failed"


class TargetKind(models.TextChoices):
    WEBHOOK = "webhook", "Webhook (HTTP POST, JSON, HMAC-SHA256 signed)"
    EMAIL = "email", "E-mail"


class NotificationTarget(models.Model):
    """A webhook URL or a list of e-mail addresses, edited in the admin."""

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=10, choices=TargetKind.choices, default=TargetKind.WEBHOOK)
    enabled = models.BooleanField(default=True)
    url = models.URLField(max_length=500, blank=True)  # webhook
    secret = models.CharField("HMAC secret", max_length=200, blank=True)  # webhook signature key
    emails = models.CharField(max_length=500, blank=True)  # comma-separated recipients
    events = models.JSONField(default=list, blank=True)  # NotifyEvent values; empty = all
    # Off: the message carries ids and statuses only (mercure sends "UNKNOWN" without phi_notifications).
    include_phi = models.BooleanField("include patient data", default=False)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class NotificationStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # queued, or waiting for its next attempt
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"  # gave up after the attempts allowed; reason says why


# scans.services.state.move_notification is the one writer of Notification.status.
NOTIFICATION_TRANSITIONS: dict[str, frozenset[str]] = {
    NotificationStatus.PENDING: frozenset({NotificationStatus.PENDING, NotificationStatus.SENT, NotificationStatus.FAILED}),
    NotificationStatus.FAILED: frozenset({NotificationStatus.PENDING}),  # an admin resends
    NotificationStatus.SENT: frozenset({NotificationStatus.PENDING}),  # an admin resends
}


class Notification(models.Model):
    """One event of one study to one target: the delivery log."""

    target = models.ForeignKey(NotificationTarget, on_delete=models.CASCADE, related_name="notifications")
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="notifications")
    event = models.CharField(max_length=20, choices=NotifyEvent.choices)
    report_version = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=NotificationStatus.choices, default=NotificationStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    reason = models.TextField(blank=True)  # the last failure, in words (no patient data)
    payload = models.JSONField(default=dict, blank=True)  # what was (or will be) sent
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "updated_at"])]
        constraints = [
            models.UniqueConstraint(fields=["target", "study", "event", "report_version"], name="notification_once"),
        ]

    def __str__(self):
        return f"Notification {self.pk} ({self.event} to {self.target_id}: {self.status})"
