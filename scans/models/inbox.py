"""The DICOM listener's inbox: every instance received over C-STORE, before and after intake.

A row is written (with its file already on disk) before the sender is answered success,
so what was acknowledged survives a crash; ``taken_in_at`` stays empty until the study
was quiet long enough and went through ``register_upload`` (scans.services.dicom_inbox).
"""
from django.db import models


class DicomInstance(models.Model):
    """One received SOP instance; a second copy of it only counts in ``duplicates``."""

    sop_instance_uid = models.CharField(max_length=64, unique=True)
    study_instance_uid = models.CharField(max_length=64, db_index=True)
    calling_ae = models.CharField(max_length=16)
    path = models.CharField(max_length=255)  # relative to settings.BRAINAI_DICOM_INBOX
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    duplicates = models.PositiveIntegerField(default=0)  # copies received again, never stored
    taken_in_at = models.DateTimeField(null=True, blank=True, db_index=True)
    upload = models.ForeignKey("scans.Upload", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["received_at", "id"]

    def __str__(self):
        return f"DICOM instance {self.pk} ({'taken in' if self.taken_in_at else 'waiting'})"
