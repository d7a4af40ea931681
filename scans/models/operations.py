"""What operators watch: each study's pipeline events, stored as rows (never with PHI)."""
from django.db import models

from scans.models.clinical import Study


class EventKind(models.TextChoices):
    RECEIVED = "received", "Received"  # an upload (portal, API, DICOM) was stored
    QUEUED = "queued", "Queued"  # scans sent to the gpu queue (detail: lane, count)
    BATCH = "batch", "Batch analysed"  # one worker batch finished (detail: scans, seconds)
    EXPLAINED = "explained", "Explained"  # the explanation was written (detail: provider)
    FINALISED = "finalised", "Finalised"  # the report is ready for review, or failed
    SENT = "sent", "Sent"  # results went to a DICOM destination or a notification target
    FAILED = "failed", "Failed"  # a scan, a batch or a send failed (detail: reason, no PHI)
    OPERATOR = "operator", "Operator action"  # retry, cancel or a priority change (detail: what)


class PipelineEvent(models.Model):
    """One step of one study through the pipeline. ``detail`` holds counts, lanes, stage
    names and reasons only: never names, patient ids, file names or UIDs."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=12, choices=EventKind.choices)
    worker = models.CharField(max_length=200, blank=True)  # hostname of the process that wrote it
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["study", "created_at"])]

    def __str__(self):
        return f"{self.kind} (study {self.study_id})"
