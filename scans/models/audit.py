"""AuditEvent: who saw or changed what, when. Written only by scans.services.audit."""
from django.conf import settings
from django.db import models

from scans.models.choices import AuditAction, Via


class AuditEvent(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor_username = models.CharField(max_length=150, blank=True)  # kept if the user is deleted
    action = models.CharField(max_length=30, choices=AuditAction.choices)
    via = models.CharField(max_length=10, choices=Via.choices)
    study = models.ForeignKey("scans.Study", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    report = models.ForeignKey("scans.Report", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)  # ids and counts only, never PHI

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["action", "created_at"])]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_username or 'system'} {self.action}"
