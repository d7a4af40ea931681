"""Patient -> Study -> Series -> Scan, and the Upload that brought scans in."""
from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import models
from django.db.models import Count, Q
from django.urls import reverse

from scans.models.choices import STUDY_STATUS_OF_REPORT, Priority, ReportStatus, ScanStatus, StudyStatus


def field_defaults(model, names) -> dict:
    """``{name: the field's default}`` for the named fields of ``model`` (what "cleared" means)."""
    return {name: model._meta.get_field(name).get_default() for name in names}


class Patient(models.Model):
    patient_id = models.CharField("clinic patient id", max_length=64, unique=True)
    name = models.CharField(max_length=200, blank=True)
    birth_date = models.DateField(null=True, blank=True)
    sex = models.CharField(max_length=1, blank=True, choices=[("F", "Female"), ("M", "Male"), ("O", "Other")])
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["patient_id"]

    def __str__(self):
        return f"Patient {self.patient_id}"


class Upload(models.Model):
    """One POST to /api/v1/uploads/ (or the portal form): what came in and what was refused."""

    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    files_received = models.PositiveIntegerField(default=0)
    accepted = models.PositiveIntegerField(default=0)
    # [{"name": ..., "reason": ...}]: every file not accepted, in a person's words.
    rejected = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"Upload {self.pk} ({self.accepted} accepted, {len(self.rejected)} rejected)"


@dataclass(frozen=True)
class Progress:
    """How far a study's analysis has come: counts of scans, and the share done."""

    total: int
    analyzed: int
    failed: int
    skipped: int = 0  # kept from the model by the series or slice rules

    @property
    def done(self) -> int:
        return self.analyzed + self.failed + self.skipped

    @property
    def pending(self) -> int:
        return self.total - self.done

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0

    @property
    def percent(self) -> int:
        return int(round(100 * self.fraction))

    @property
    def is_complete(self) -> bool:
        return self.pending == 0


class Study(models.Model):
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="studies")
    study_instance_uid = models.CharField(max_length=64, unique=True)
    study_date = models.DateField(null=True, blank=True)
    description = models.CharField(max_length=200, blank=True)
    modality = models.CharField(max_length=16, blank=True)
    status = models.CharField(max_length=20, choices=StudyStatus.choices, default=StudyStatus.ANALYZING)
    # The classifier the upload asked for (an ml.model.registry name); "" = the configured default.
    requested_model = models.CharField(max_length=64, blank=True, default="")
    # The lane on the gpu queue (scans.services.priority decides it at upload; operators change it).
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.ROUTINE, db_index=True)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "studies"
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self):
        return f"Study {self.pk}"

    def get_absolute_url(self):
        return reverse("api:study-detail", args=[self.pk])

    @property
    def progress(self) -> Progress:
        """Scan counts; uses values annotated by selectors when present (no extra query)."""
        if hasattr(self, "n_scans"):
            return Progress(self.n_scans, self.n_analyzed, self.n_failed, getattr(self, "n_skipped", 0))
        counts = self.scans.aggregate(**PROGRESS_ANNOTATIONS)
        return Progress(counts["n_scans"], counts["n_analyzed"], counts["n_failed"], counts["n_skipped"])

    @property
    def report(self):
        """The current report version (None only for a study still being created).

        The queryset form, for locking or filtering, is ``Report.objects.current()``.
        """
        return self.reports.current().first()

    def derived_status(self, report=None) -> StudyStatus:
        """What ``status`` must say, given the current report (fetched when not given).

        Analysing until the report has its AI finding and no scan is pending; explaining
        while the finding waits for its explanation; then what the report says
        (``STUDY_STATUS_OF_REPORT``). scans.services.state stores it.
        """
        report = report if report is not None else self.report
        if report is None:
            return StudyStatus.ANALYZING
        if report.status != ReportStatus.PROCESSING:
            return STUDY_STATUS_OF_REPORT[report.status]
        if not report.label or self.scans.filter(status=ScanStatus.PENDING).exists():
            return StudyStatus.ANALYZING
        return StudyStatus.EXPLAINING


PROGRESS_ANNOTATIONS = {
    "n_scans": Count("id"),
    "n_analyzed": Count("id", filter=Q(status=ScanStatus.ANALYZED)),
    "n_failed": Count("id", filter=Q(status=ScanStatus.FAILED)),
    "n_skipped": Count("id", filter=Q(status=ScanStatus.SKIPPED)),
}
# The same counts as annotations on a Study queryset (see scans.selectors.studies).
STUDY_PROGRESS_ANNOTATIONS = {
    "n_scans": Count("scans", distinct=True),
    "n_analyzed": Count("scans", filter=Q(scans__status=ScanStatus.ANALYZED), distinct=True),
    "n_failed": Count("scans", filter=Q(scans__status=ScanStatus.FAILED), distinct=True),
    "n_skipped": Count("scans", filter=Q(scans__status=ScanStatus.SKIPPED), distinct=True),
}


class Series(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="series")
    series_instance_uid = models.CharField(max_length=64)
    number = models.IntegerField(null=True, blank=True)
    description = models.CharField(max_length=200, blank=True)
    modality = models.CharField(max_length=16, blank=True)
    # Series selection (ml.study), decided at upload: analysed or not, a code, a person's reason,
    # and the header facts it read. A series not analysed keeps its scans, never queued.
    analysed = models.BooleanField(default=True)
    decision = models.CharField(max_length=20, blank=True)
    decision_reason = models.CharField(max_length=300, blank=True)
    facts = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["study", "number", "id"]
        verbose_name_plural = "series"
        constraints = [
            models.UniqueConstraint(fields=["study", "series_instance_uid"], name="series_unique_uid_in_study")
        ]

    def __str__(self):
        return f"Series {self.pk} of study {self.study_id}"


class Scan(models.Model):
    """One 2-D image: a JPEG/PNG file, or one frame of a DICOM file."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="scans")
    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="scans")
    upload = models.ForeignKey(Upload, null=True, blank=True, on_delete=models.SET_NULL, related_name="scans")
    source = models.FileField("original file", upload_to="sources/", max_length=200)
    image = models.FileField("preview PNG", upload_to="previews/", max_length=200, blank=True)
    original_name = models.CharField(max_length=255, blank=True)  # may hold PHI: never logged
    sha256 = models.CharField(max_length=64, db_index=True)
    frame_index = models.PositiveIntegerField(default=0)  # frame within a multi-frame DICOM
    sop_instance_uid = models.CharField(max_length=64, blank=True)
    instance_number = models.IntegerField(null=True, blank=True)
    rows = models.PositiveIntegerField(default=0)
    columns = models.PositiveIntegerField(default=0)
    orientation = models.JSONField(null=True, blank=True)  # DICOM ImageOrientationPatient
    status = models.CharField(max_length=10, choices=ScanStatus.choices, default=ScanStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)  # analysis tries started
    worker = models.CharField(max_length=200, blank=True)  # the worker (hostname) that claimed it last
    error = models.TextField(blank=True)
    skip_reason = models.CharField(max_length=300, blank=True)  # why it is skipped (series or slice rules)
    created_at = models.DateTimeField(auto_now_add=True)
    analyzed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["series", "instance_number", "frame_index", "id"]
        constraints = [
            models.UniqueConstraint(fields=["sha256", "frame_index"], name="scan_unique_content"),
            models.UniqueConstraint(
                fields=["sop_instance_uid", "frame_index"],
                condition=~Q(sop_instance_uid=""),
                name="scan_unique_sop_instance",
            ),
        ]
        indexes = [models.Index(fields=["study", "status"])]

    # What an analysis leaves on the scan; a re-run puts each back to its default.
    ANALYSIS_FIELDS = ("attempts", "worker", "error", "analyzed_at", "skip_reason")

    def __str__(self):
        return f"Scan {self.pk}"

    @classmethod
    def cleared_analysis(cls) -> dict:
        """``ANALYSIS_FIELDS`` at their defaults, for ``QuerySet.update`` (status aside)."""
        return field_defaults(cls, cls.ANALYSIS_FIELDS)
