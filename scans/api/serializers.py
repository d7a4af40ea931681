"""API shapes (README.md, "REST API (v1)"). Read-only: writes go through scans.services."""
from __future__ import annotations

from urllib.parse import quote

from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from scans import services, snapshot
from scans.models import Label, Patient, Report, Scan, Series, Study

NOTICE = "Decision support only; not for diagnostic use. A radiologist reviews every finding."


def _url(request, name: str, pk: int) -> str:
    path = reverse(name, args=[pk])
    return request.build_absolute_uri(path) if request is not None else path


def _media_base(request) -> str:
    return request.build_absolute_uri(settings.MEDIA_URL) if request is not None else settings.MEDIA_URL


def _media(base: str, field) -> str | None:
    return base + quote(field.name) if field and field.name else None


# Saliency and the faithfulness check come from a later pass (scans.services.detail).
DETAIL_COMPUTED, DETAIL_NOT_COMPUTED = "computed", "not computed"


def scan_rows(scans, request) -> list[dict]:
    """The API's per-scan rows, in the shape ScanSerializer describes to the OpenAPI schema.

    Built directly rather than through the serializer: a 200-slice report in a few milliseconds.
    """
    base = _media_base(request)
    rows = []
    for scan in scans:
        a = getattr(scan, "analysis", None)
        rows.append({
            "id": scan.pk, "series": scan.series_id, "instance_number": scan.instance_number,
            "frame_index": scan.frame_index, "status": scan.status, "error": scan.error,
            "skip_reason": scan.skip_reason,
            "label": a.label if a else None, "confidence": a.confidence if a else None,
            "probabilities": a.probabilities if a else None, "in_distribution": a.in_distribution if a else None,
            "image_url": _media(base, scan.image), "heatmap_url": _media(base, a.heatmap) if a else None,
            "overlay_url": _media(base, a.overlay) if a else None,
            "saliency_url": _media(base, a.saliency) if a else None,
            "faithfulness": a.faithfulness_score if a else None,
            "detail": (DETAIL_COMPUTED if a.detail_computed else DETAIL_NOT_COMPUTED) if a else None,
        })
    return rows


class PatientSerializer(serializers.ModelSerializer):
    class Meta:
        model = Patient
        fields = ["patient_id", "name", "birth_date", "sex"]


class LinkSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.URLField()


# Describes the rows scan_rows builds, for the OpenAPI schema; it never serialises a scan.
class ScanSerializer(serializers.ModelSerializer):
    """A scan with its per-slice AI result (null fields until analysed)."""

    label = serializers.CharField(read_only=True, allow_null=True)
    confidence = serializers.FloatField(read_only=True, allow_null=True)
    probabilities = serializers.DictField(read_only=True, allow_null=True)
    in_distribution = serializers.BooleanField(read_only=True, allow_null=True)
    image_url = serializers.CharField(read_only=True, allow_null=True)
    heatmap_url = serializers.CharField(read_only=True, allow_null=True)
    overlay_url = serializers.CharField(read_only=True, allow_null=True)
    saliency_url = serializers.CharField(read_only=True, allow_null=True,
                                         help_text='null while the detail pass has not run ("detail": "not computed")')
    faithfulness = serializers.FloatField(read_only=True, allow_null=True,
                                          help_text="0-1 heatmap faithfulness; null when not computed")
    detail = serializers.ChoiceField(choices=[DETAIL_COMPUTED, DETAIL_NOT_COMPUTED], read_only=True, allow_null=True,
                                     help_text="whether saliency and the faithfulness check were computed; "
                                               "POST /reports/{id}/detail/ asks for them")

    class Meta:
        model = Scan
        fields = ["id", "series", "instance_number", "frame_index", "status", "error", "skip_reason", "label",
                  "confidence",
                  "probabilities", "in_distribution", "image_url", "heatmap_url", "overlay_url",
                  "saliency_url", "faithfulness", "detail"]


class StudySerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    patient = PatientSerializer()
    progress = serializers.SerializerMethodField()
    report = serializers.SerializerMethodField()

    class Meta:
        model = Study
        fields = ["id", "url", "patient", "status", "progress", "study_date", "description", "modality",
                  "requested_model", "created_at", "report"]

    def get_url(self, study) -> str:
        return _url(self.context.get("request"), "api:study-detail", study.pk)

    def get_progress(self, study) -> dict:
        p = study.progress
        return {"total": p.total, "analyzed": p.analyzed, "failed": p.failed, "skipped": p.skipped,
                "percent": p.percent}

    def get_report(self, study) -> dict | None:
        report = next((r for r in study.reports.all() if r.is_current), None)
        if report is None:
            return None
        return {"id": report.pk, "url": _url(self.context.get("request"), "api:report-detail", report.pk)}


class SeriesDecisionSerializer(serializers.ModelSerializer):
    """A series and the series rules' decision: analysed or not, and why."""

    class Meta:
        model = Series
        fields = ["id", "number", "description", "modality", "analysed", "decision", "decision_reason"]


class StudyDetailSerializer(StudySerializer):
    scans = serializers.SerializerMethodField()
    series = SeriesDecisionSerializer(many=True, read_only=True)

    class Meta(StudySerializer.Meta):
        fields = StudySerializer.Meta.fields + ["series", "scans"]

    @extend_schema_field(ScanSerializer(many=True))
    def get_scans(self, study) -> list[dict]:
        return scan_rows(study.scans.all(), self.context.get("request"))


class FindingSerializer(serializers.Serializer):
    """The study's AI finding: from consistent evidence for DICOM series (docs/series-selection.md)."""

    label = serializers.ChoiceField(choices=Label.choices)
    confidence = serializers.FloatField(allow_null=True)
    probabilities = serializers.DictField()
    evidence = serializers.CharField(help_text="why: e.g. '7 of 22 slices in series 4 (...) support meningioma, "
                                               "contiguous from slice 9 to 15'")
    rules_version = serializers.CharField(help_text="the series rules' version the finding used")
    not_analysed = serializers.ListField(child=serializers.DictField(), help_text=(
        "every series not analysed, and the slices slice selection skipped: series, description, code, "
        "reason, scans"))


class ReportSerializer(serializers.ModelSerializer):
    """A report in lists: finding and status, no per-scan detail."""

    url = serializers.SerializerMethodField()
    study = serializers.SerializerMethodField()
    finding = serializers.SerializerMethodField()

    class Meta:
        model = Report
        fields = ["id", "url", "version", "study", "status", "finding", "created_at", "signed_at"]

    def get_url(self, report) -> str:
        return _url(self.context.get("request"), "api:report-detail", report.pk)

    def get_study(self, report) -> dict:
        study = report.study
        return {"id": study.pk, "url": _url(self.context.get("request"), "api:study-detail", study.pk),
                "patient": PatientSerializer(study.patient).data, "description": study.description,
                "study_date": study.study_date}

    @extend_schema_field(FindingSerializer(allow_null=True))
    def get_finding(self, report) -> dict | None:
        if not report.label:
            return None
        return {"label": report.label, "confidence": report.confidence, "probabilities": report.probabilities,
                "evidence": report.evidence, "rules_version": report.rules_version,
                "not_analysed": report.not_analysed}


class SnapshotSerializer(serializers.Serializer):
    """A signed version's frozen content: its sha256, whether it still matches, and where the bytes are."""

    sha256 = serializers.CharField()
    intact = serializers.BooleanField()
    url = serializers.URLField()


class ReportDetailSerializer(ReportSerializer):
    """One version. A signed one is read from its snapshot (scans.snapshot), never the live rows."""

    scans = serializers.SerializerMethodField()
    explanation = serializers.SerializerMethodField()
    model = serializers.SerializerMethodField()
    review = serializers.SerializerMethodField()
    failure_reason = serializers.CharField()
    snapshot = serializers.SerializerMethodField()
    notice = serializers.SerializerMethodField()

    class Meta(ReportSerializer.Meta):
        fields = ReportSerializer.Meta.fields + ["scans", "explanation", "model", "review", "failure_reason",
                                                 "snapshot", "notice"]

    def to_representation(self, report):
        self._frozen = snapshot.apply(report)  # None: not signed, the live rows are the report
        return super().to_representation(report)

    @extend_schema_field(ScanSerializer(many=True))
    def get_scans(self, report) -> list[dict]:
        slices = self._frozen if self._frozen is not None else report.study.scans.all()
        return scan_rows(slices, self.context.get("request"))

    @extend_schema_field(SnapshotSerializer(allow_null=True))
    def get_snapshot(self, report) -> dict | None:
        if not report.snapshot:
            return None
        return {"sha256": report.snapshot_sha256, "intact": snapshot.is_intact(report),
                "url": _url(self.context.get("request"), "api:report-snapshot", report.pk)}

    def get_explanation(self, report) -> dict:
        return {"text": report.explanation_text, "provider": report.explanation_provider,
                "model": report.explanation_model, "prompt_version": report.explanation_prompt_version,
                "fallback_reason": report.explanation_fallback_reason or None,
                "pending": report.explanation_pending}

    def get_model(self, report) -> dict:
        return {"name": report.model_name, "version": report.model_version}

    def get_review(self, report) -> dict:
        return {
            "findings": report.findings, "impression": report.impression,
            "reviewed_by": report.reviewed_by.get_username() if report.reviewed_by else None,
            "reviewed_at": report.reviewed_at,
            "signed_by": report.signed_by.get_username() if report.signed_by else None,
            "signed_at": report.signed_at, "is_editable": report.is_editable,
            "previous_version": report.previous_id,
        }

    def get_notice(self, report) -> str:
        return NOTICE


class UploadRequestSerializer(serializers.Serializer):
    files = serializers.ListField(child=serializers.FileField(allow_empty_file=True), allow_empty=False,
                                  help_text="DICOM, JPEG, PNG or ZIP files (repeat the field).")
    patient_id = serializers.CharField(required=False, max_length=64, allow_blank=True)
    patient_name = serializers.CharField(required=False, max_length=200, allow_blank=True)
    patient_birth_date = serializers.DateField(required=False, allow_null=True)
    patient_sex = serializers.ChoiceField(choices=["F", "M", "O", ""], required=False)
    study_description = serializers.CharField(required=False, max_length=200, allow_blank=True)
    study_date = serializers.DateField(required=False, allow_null=True)
    model = serializers.CharField(required=False, max_length=64, allow_blank=True,
                                  help_text="Classifier for the new studies, one of the available models "
                                            "(most accurate first); empty = the configured default.")

    def validate_model(self, value: str) -> str:
        try:
            return services.check_model_name(value)
        except services.UnknownModel as exc:
            raise serializers.ValidationError(str(exc)) from None


class RejectedSerializer(serializers.Serializer):
    name = serializers.CharField()
    reason = serializers.CharField()


class UploadResultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    studies = LinkSerializer(many=True)
    accepted = serializers.IntegerField()
    rejected = RejectedSerializer(many=True)


class ReviewSerializer(serializers.Serializer):
    findings = serializers.CharField(required=False, allow_blank=True, max_length=20000, default="")
    impression = serializers.CharField(required=False, allow_blank=True, max_length=20000, default="")


class DetailRequestSerializer(serializers.Serializer):
    """Which slices to compute saliency and the faithfulness check for (none named: all)."""

    scans = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False, max_length=5000)
