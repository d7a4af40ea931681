"""AuditEvent: who saw or changed what, when. Written only by scans.services.audit.

Append-only: the model refuses to save an existing row or delete one, and a database
trigger (migration 0004) refuses UPDATE and DELETE for anything that goes around the ORM.
The actor, study and report are stored as plain ids (foreign keys without a database
constraint and ``DO_NOTHING``), so deleting a user, study or report never rewrites a row.
"""
from django.conf import settings
from django.db import models

from scans.models.choices import AuditAction, Via


class AppendOnly(Exception):
    """An audit row was to be changed or deleted."""


def _plain_id(to: str) -> models.ForeignKey:
    # A reference kept as a value: no constraint, nothing cascades into the audit table.
    return models.ForeignKey(to, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False,
                             related_name="+")


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnly("audit events are never updated")

    def delete(self):
        raise AppendOnly("audit events are never deleted")


class AuditEvent(models.Model):
    objects = AuditEventQuerySet.as_manager()

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = _plain_id(settings.AUTH_USER_MODEL)
    actor_username = models.CharField(max_length=150, blank=True)  # kept if the user is deleted
    action = models.CharField(max_length=30, choices=AuditAction.choices)
    via = models.CharField(max_length=10, choices=Via.choices)
    study = _plain_id("scans.Study")
    report = _plain_id("scans.Report")
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)  # ids and counts only, never PHI

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["action", "created_at"])]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_username or 'system'} {self.action}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnly(f"audit event {self.pk} is never changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnly(f"audit event {self.pk} is never deleted")
