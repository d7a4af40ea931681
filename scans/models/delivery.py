"""Where results go back to (Destination) and what became of each send (Delivery)."""
from __future__ import annotations

import os
import re

from django.core.exceptions import ValidationError
from django.db import models

from scans.models.results import Report


# A password or token stored as "env:NAME" is read from the environment variable NAME of
# the process that sends (the outbound worker), so the secret need not sit in the database.
ENV_REFERENCE = re.compile(r"^env:([A-Za-z_][A-Za-z0-9_]*)$")
SECRET_FIELDS = ("password", "token")


class MissingSecret(ValueError):
    """A destination's ``env:NAME`` secret names a variable that is not set; says which, never a value."""


class DestinationKind(models.TextChoices):
    CSTORE = "cstore", "DICOM C-STORE"
    STOW = "stow", "DICOMweb STOW-RS"


class Destination(models.Model):
    """A PACS (or any DICOM node) that receives our SR and overlays; edited in the admin."""

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=10, choices=DestinationKind.choices, default=DestinationKind.CSTORE)
    enabled = models.BooleanField(default=True)
    # C-STORE: the destination's AE title, host and port (we call as BRAINAI_DICOM_AE_TITLE).
    ae_title = models.CharField("AE title", max_length=16, blank=True)
    host = models.CharField(max_length=255, blank=True)
    port = models.PositiveIntegerField(null=True, blank=True)
    # STOW-RS: the ".../studies" URL; basic auth (username + password) or a bearer token.
    url = models.URLField("STOW-RS URL", max_length=500, blank=True)
    username = models.CharField(max_length=100, blank=True)
    password = models.CharField(max_length=200, blank=True)
    token = models.CharField("bearer token", max_length=500, blank=True)
    # The rule of what to send when.
    send_preliminary = models.BooleanField("SR when awaiting review (unverified)", default=True)
    send_signed = models.BooleanField("SR after sign-off and amendments (verified)", default=True)
    send_overlays = models.BooleanField("Grad-CAM overlays (secondary captures) with each SR", default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def clean(self):
        if self.kind == DestinationKind.CSTORE and not (self.ae_title and self.host and self.port):
            raise ValidationError("A C-STORE destination needs its AE title, host and port.")
        if self.kind == DestinationKind.STOW and not self.url:
            raise ValidationError("A STOW-RS destination needs its URL.")
        for field in SECRET_FIELDS:
            value = getattr(self, field)
            if value.startswith("env:") and not ENV_REFERENCE.match(value):
                raise ValidationError({field: "Write env:NAME, NAME being an environment variable "
                                              "(letters, digits, _)."})

    def secret(self, field: str) -> str:
        """The ``password`` or ``token`` to send with: the stored value, or the value of the
        environment variable that an ``env:NAME`` value names.

        Raises:
            MissingSecret: the variable is not set (the message names it, and no value).
        """
        if field not in SECRET_FIELDS:
            raise ValueError(f"{field!r} is not a secret of a destination")
        value = getattr(self, field)
        found = ENV_REFERENCE.match(value)
        if not found:
            return value
        name = found.group(1)
        if name not in os.environ:
            raise MissingSecret(f"the {field} of destination {self.name!r} is read from the environment "
                                f"variable {name}, which is not set here")
        return os.environ[name]

    def wants(self, verified: bool) -> bool:
        """Whether this destination takes the SR of a version that is (not) verified."""
        return self.enabled and (self.send_signed if verified else self.send_preliminary)


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # queued, or waiting for its next attempt
    SENT = "sent", "Sent"  # the destination took every file
    FAILED = "failed", "Failed"  # gave up after the attempts allowed; reason says why


# scans.services.state.move_delivery is the one writer of Delivery.status.
DELIVERY_TRANSITIONS: dict[str, frozenset[str]] = {
    DeliveryStatus.PENDING: frozenset({DeliveryStatus.PENDING, DeliveryStatus.SENT, DeliveryStatus.FAILED}),
    DeliveryStatus.FAILED: frozenset({DeliveryStatus.PENDING}),  # an admin retries
    DeliveryStatus.SENT: frozenset({DeliveryStatus.PENDING}),  # an admin sends it again
}


class Delivery(models.Model):
    """One report version's results to one destination: the SR (and overlays), all files
    in one attempt; ``attempts`` counts tries for the whole set, never per file."""

    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="deliveries")
    destination = models.ForeignKey(Destination, on_delete=models.CASCADE, related_name="deliveries")
    verified = models.BooleanField()  # the SR is VERIFIED (signed version) or UNVERIFIED
    with_overlays = models.BooleanField(default=True)
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    reason = models.TextField(blank=True)  # the last failure, in words (no patient data)
    sr_series_uid = models.CharField(max_length=64)
    sr_sop_instance_uid = models.CharField(max_length=64)
    # The SR this one replaces (the last SR sent to this destination for the study), if any.
    replaces_sop_instance_uid = models.CharField(max_length=64, blank=True)
    replaces_series_uid = models.CharField(max_length=64, blank=True)
    files = models.PositiveSmallIntegerField(default=0)  # how many went in the last successful send
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "deliveries"
        indexes = [models.Index(fields=["status", "updated_at"])]

    def __str__(self):
        return f"Delivery {self.pk} (report {self.report_id} to {self.destination_id}: {self.status})"
