"""What the pipeline produces: one Analysis per scan, Report versions per study."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse

from scans.models.choices import Label, ReportStatus, TUMOUR_LABELS, Verdict
from scans.models.clinical import Scan, Study, field_defaults


class Analysis(models.Model):
    """The model's result for one scan. One row per scan (re-runs replace it)."""

    scan = models.OneToOneField(Scan, on_delete=models.CASCADE, related_name="analysis")
    model_name = models.CharField(max_length=100)
    model_version = models.CharField(max_length=100)
    label = models.CharField(max_length=20, choices=Label.choices)
    probabilities = models.JSONField(default=dict)  # class -> calibrated probability
    confidence = models.FloatField()
    in_distribution = models.BooleanField()
    guard = models.JSONField(default=dict, blank=True)  # input guard scores
    region = models.JSONField(default=dict, blank=True)  # where the heatmap peaks, in words
    # Deletion check of the heatmap against random maps: {"map_auc", "random_auc", "gain", ...}
    faithfulness = models.JSONField(null=True, blank=True)
    timings = models.JSONField(default=dict, blank=True)  # seconds per stage
    heatmap = models.FileField(upload_to="heatmaps/", max_length=200, blank=True)
    overlay = models.FileField(upload_to="overlays/", max_length=200, blank=True)
    saliency = models.FileField(upload_to="saliency/", max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "analyses"
        ordering = ["scan"]

    def __str__(self):
        return f"Analysis of scan {self.scan_id}: {self.label}"

    @property
    def is_positive(self) -> bool:
        return self.label in TUMOUR_LABELS

    @property
    def detail_computed(self) -> bool:
        """The detail pass (scans.services.detail) has run: the faithfulness check is
        stored, and the saliency map too unless BRAINAI_SALIENCY is off."""
        return self.faithfulness is not None

    @property
    def faithfulness_score(self) -> float | None:
        """0-1: how much deleting the highlighted region hurt the model, relative to
        deleting random regions (1 = the heatmap found what mattered; 0 = no better than
        random). None when not measured."""
        f = self.faithfulness or {}
        try:
            gain, rnd = float(f["gain"]), float(f["random_auc"])
        except (KeyError, TypeError, ValueError):
            return None
        return max(0.0, min(1.0, gain / rnd)) if rnd > 0 else 0.0


class ReportQuerySet(models.QuerySet):
    def current(self) -> "ReportQuerySet":
        """Only the current version of each study's report (at most one per study)."""
        return self.filter(is_current=True)


class Report(models.Model):
    """One version of a study's report. Amendments add versions; old ones are kept."""

    objects = ReportQuerySet.as_manager()

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="reports")
    version = models.PositiveIntegerField(default=1)
    is_current = models.BooleanField(default=True)
    previous = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="amendment"
    )
    status = models.CharField(max_length=20, choices=ReportStatus.choices, default=ReportStatus.PROCESSING)
    failure_reason = models.TextField(blank=True)

    # AI finding for the study: the slice the model finds most suspicious decides it.
    label = models.CharField(max_length=20, choices=Label.choices, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    probabilities = models.JSONField(default=dict, blank=True)
    key_scan = models.ForeignKey(Scan, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    model_name = models.CharField(max_length=100, blank=True)
    model_version = models.CharField(max_length=100, blank=True)
    # How the finding was decided (ml.study): the series rules' version, the evidence sentence,
    # and every series or slice not analysed with its reason.
    rules_version = models.CharField(max_length=40, blank=True)
    evidence = models.TextField(blank=True)
    not_analysed = models.JSONField(default=list, blank=True)

    # LLM explanation, built from structured results only (never PHI).
    explanation_text = models.TextField(blank=True)
    explanation_provider = models.CharField(max_length=40, blank=True)
    explanation_model = models.CharField(max_length=100, blank=True)
    explanation_prompt_version = models.CharField(max_length=40, blank=True)
    explanation_latency_ms = models.PositiveIntegerField(null=True, blank=True)
    explanation_fallback_reason = models.TextField(blank=True)
    explanation_llm_attempts = models.PositiveSmallIntegerField(default=0)
    explanation_requested_at = models.DateTimeField(null=True, blank=True)
    explanation_generated_at = models.DateTimeField(null=True, blank=True)
    explanation_task_attempts = models.PositiveSmallIntegerField(default=0)

    # What the pipeline wrote above (the finding, the explanation, why it failed):
    # clear_ai_result() puts each back to its default when the study is analysed again.
    # A field added to either group belongs here too (tests/scans/test_state_writers.py asks).
    AI_RESULT_FIELDS = (
        "failure_reason", "label", "confidence", "probabilities", "key_scan", "model_name", "model_version",
        "rules_version", "evidence", "not_analysed",
        "explanation_text", "explanation_provider", "explanation_model", "explanation_prompt_version",
        "explanation_latency_ms", "explanation_fallback_reason", "explanation_llm_attempts",
        "explanation_requested_at", "explanation_generated_at", "explanation_task_attempts",
        # A draft verdict (update_review) judged the finding cleared here; it goes with it.
        "verdict", "verdict_label",
    )

    # The radiologist's part.
    findings = models.TextField(blank=True)
    impression = models.TextField(blank=True)
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    reviewed_at = models.DateTimeField(null=True, blank=True)
    signed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    signed_at = models.DateTimeField(null=True, blank=True)
    # The structured verdict beside the free text (issue #20): agrees / disagrees with the
    # correct label / not assessable; set at sign-off, part of the signed snapshot.
    verdict = models.CharField(max_length=20, choices=Verdict.choices, blank=True)
    verdict_label = models.CharField(max_length=20, choices=Label.choices, blank=True)

    # What the radiologist saw at sign-off (scans.snapshot.build), and the sha256 of its
    # canonical JSON. Set once per signed version; every later read of it shows this.
    snapshot = models.JSONField(null=True, blank=True)
    snapshot_sha256 = models.CharField(max_length=64, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["study", "version"], name="report_unique_version"),
            models.UniqueConstraint(fields=["study"], condition=Q(is_current=True), name="report_one_current_per_study"),
        ]
        indexes = [models.Index(fields=["is_current", "status"])]

    def __str__(self):
        return f"Report {self.pk} (study {self.study_id}, v{self.version})"

    def get_absolute_url(self):
        return reverse("api:report-detail", args=[self.pk])

    def clear_ai_result(self) -> list[str]:
        """Put every ``AI_RESULT_FIELDS`` field back to its default (not saved; status aside).

        Returns the names cleared, for ``save(update_fields=...)``.
        """
        for name, value in field_defaults(Report, self.AI_RESULT_FIELDS).items():
            setattr(self, name, value)
        return list(self.AI_RESULT_FIELDS)

    @property
    def is_editable(self) -> bool:
        """The radiologist may edit findings/impression only while it awaits review."""
        return self.is_current and self.status == ReportStatus.AWAITING_REVIEW

    @property
    def is_signed(self) -> bool:
        return self.status in (ReportStatus.SIGNED, ReportStatus.AMENDED)

    @property
    def is_amendable(self) -> bool:
        return self.is_current and self.is_signed

    @property
    def is_explainable(self) -> bool:
        """A new explanation may be asked for: current, not signed, and with an AI finding."""
        return self.is_current and not self.is_signed and bool(self.label)

    @property
    def is_positive(self) -> bool:
        return self.label in TUMOUR_LABELS

    @property
    def is_low_confidence(self) -> bool:
        return self.confidence is not None and self.confidence < settings.BRAINAI_LOW_CONFIDENCE

    @property
    def explanation_pending(self) -> bool:
        return self.explanation_requested_at is not None and (
            self.explanation_generated_at is None or self.explanation_generated_at < self.explanation_requested_at
        )
