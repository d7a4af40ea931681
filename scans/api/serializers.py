"""API shapes (README.md, "REST API (v1)"). Read-only: writes go through scans.services."""
from __future__ import annotations

from urllib.parse import quote

from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from scans import services, slice_facts, snapshot
from scans.models import Label, Patient, Priority, Report, Scan, Series, Study, Verdict

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
            "faithfulness_check": _check(a),
            "detail": (DETAIL_COMPUTED if a.detail_computed else DETAIL_NOT_COMPUTED) if a else None,
            "guard": _guard(a),
        })
    return rows


def _check(analysis) -> dict | None:
    check = slice_facts.faithfulness_check(analysis)
    return check.as_api() if check is not None else None


def _guard(analysis) -> dict | None:
    guard = slice_facts.guard_verdict(analysis)
    return guard.as_api() if guard is not None else None


class FaithfulnessCheckSerializer(serializers.Serializer):
    """The per-slice check of the Grad-CAM map (docs/explainability.md, "Faithfulness")."""

    metric = serializers.CharField(help_text='"deletion_auc"')
    map_auc = serializers.FloatField(allow_null=True, help_text="deletion AUC of the map (lower is better)")
    random_auc = serializers.FloatField(allow_null=True, help_text="mean deletion AUC of random maps")
    gain = serializers.FloatField(allow_null=True, help_text="random_auc - map_auc")
    score = serializers.FloatField(allow_null=True, help_text="gain / random_auc clipped to [0, 1]")
    beats_random = serializers.BooleanField(allow_null=True, help_text=(
        "false: the map does no better than random maps; the report warns \"%s\"" % slice_facts.HEATMAP_WARNING))
    fractions = serializers.ListField(child=serializers.FloatField(), help_text="shares of pixels deleted")


class GuardSerializer(serializers.Serializer):
    """The input guard's verdict on a slice (ml.guard.input_guard)."""

    verdict = serializers.ChoiceField(choices=["accepted", "rejected"], help_text=(
        '"rejected": the slice is labelled not_brain_mri and its classifier confidence is not meaningful'))
    score = serializers.FloatField(allow_null=True, help_text="the largest of the guard's check scores")
    threshold = serializers.FloatField(help_text="the guard rejects above this score (1.0)")
    components = serializers.DictField(child=serializers.FloatField(), help_text="score per check")
    reasons = serializers.ListField(child=serializers.CharField(), help_text="why it rejected, in words")


class HeatmapWarningSerializer(serializers.Serializer):
    text = serializers.CharField(help_text=f'"{slice_facts.HEATMAP_WARNING}"')
    why = serializers.CharField(help_text="the numbers behind it, in one sentence")


class KeySliceSerializer(serializers.Serializer):
    """The key slice's heatmap check and guard verdict; the warning when its map does no better than random."""

    scan = serializers.IntegerField()
    detail = serializers.ChoiceField(choices=[DETAIL_COMPUTED, DETAIL_NOT_COMPUTED])
    faithfulness_check = FaithfulnessCheckSerializer(allow_null=True)
    warning = HeatmapWarningSerializer(allow_null=True)
    guard = GuardSerializer(allow_null=True)


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
    faithfulness_check = FaithfulnessCheckSerializer(read_only=True, allow_null=True,
                                                     help_text='null when not computed ("detail": "not computed")')
    guard = GuardSerializer(read_only=True, allow_null=True, help_text=(
        "the input guard's verdict; for a rejected slice (label not_brain_mri) read this, not confidence, "
        "which stays for compatibility"))

    class Meta:
        model = Scan
        fields = ["id", "series", "instance_number", "frame_index", "status", "error", "skip_reason", "label",
                  "confidence",
                  "probabilities", "in_distribution", "image_url", "heatmap_url", "overlay_url",
                  "saliency_url", "faithfulness", "faithfulness_check", "detail", "guard"]


class StudySerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    patient = PatientSerializer()
    progress = serializers.SerializerMethodField()
    report = serializers.SerializerMethodField()

    class Meta:
        model = Study
        fields = ["id", "url", "patient", "status", "progress", "study_date", "description", "modality",
                  "requested_model", "priority", "created_at", "report"]

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
    key_slice = serializers.SerializerMethodField()

    class Meta(ReportSerializer.Meta):
        fields = ReportSerializer.Meta.fields + ["scans", "key_slice", "explanation", "model", "review",
                                                 "failure_reason", "snapshot", "notice"]

    def to_representation(self, report):
        self._frozen = snapshot.apply(report)  # None: not signed, the live rows are the report
        return super().to_representation(report)

    @extend_schema_field(ScanSerializer(many=True))
    def get_scans(self, report) -> list[dict]:
        slices = self._frozen if self._frozen is not None else report.study.scans.all()
        return scan_rows(slices, self.context.get("request"))

    @extend_schema_field(KeySliceSerializer(allow_null=True))
    def get_key_slice(self, report) -> dict | None:
        slices = self._frozen if self._frozen is not None else report.study.scans.all()
        heat = slice_facts.key_slice_heatmap(report, slices)
        if heat is None:
            return None
        key = next(s for s in slices if s.pk == heat.scan_id)
        return {**heat.as_api(), "guard": _guard(key.analysis)}

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
            "verdict": report.verdict or None, "verdict_label": report.verdict_label or None,
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

    priority = serializers.ChoiceField(choices=Priority.choices, required=False, allow_blank=True,
                                       help_text="Lane on the gpu queue for the new studies: urgent, routine or "
                                                 "research; omitted or empty = the BRAINAI_PRIORITY_RULES rules, "
                                                 "else routine.")

    def validate_model(self, value: str) -> str:
        try:
            return services.check_model_name(value)
        except services.UnknownModel as exc:
            raise serializers.ValidationError(str(exc)) from None


class PriorityRequestSerializer(serializers.Serializer):
    """A study's new lane on the gpu queue."""

    priority = serializers.ChoiceField(choices=Priority.choices, help_text="urgent, routine or research")


class PriorityResultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    priority = serializers.ChoiceField(choices=Priority.choices)
    changed = serializers.BooleanField(help_text="false when the study was already in that lane")


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


class SignSerializer(ReviewSerializer):
    """Sign-off and the draft review: the text and the structured verdict on the AI finding.

    Without ``verdict`` the stored one (a draft, or none) is kept; ``""`` is "not recorded".
    ``verdict_label`` is required with ``disagree`` and refused otherwise
    (scans.services.check_verdict); the view passes the report's AI label as ``ai_label``.
    """

    verdict = serializers.ChoiceField(choices=[("", "not recorded"), *Verdict.choices], required=False,
                                      allow_blank=True, help_text="agree, disagree or not_assessable; "
                                      "\"\" = not recorded. Omitted: the stored draft is kept.")
    verdict_label = serializers.ChoiceField(choices=list(services.VERDICT_LABELS), required=False, allow_blank=True,
                                            help_text="the correct label; required with disagree, and only then")

    def validate(self, attrs):
        if "verdict" not in attrs:
            if attrs.get("verdict_label"):
                raise serializers.ValidationError({"verdict": ["give the verdict (disagree) with verdict_label"]})
            return attrs
        try:
            attrs["verdict"], attrs["verdict_label"] = services.check_verdict(
                attrs["verdict"], attrs.get("verdict_label"), ai_label=self.context.get("ai_label"))
        except services.InvalidVerdict as exc:
            raise serializers.ValidationError({exc.field: [str(exc)]}) from None
        return attrs


class DetailRequestSerializer(serializers.Serializer):
    """Which slices to compute saliency and the faithfulness check for (none named: all)."""

    scans = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False, max_length=5000)


class AnalyticsFilterSerializer(serializers.Serializer):
    """The reviewer analytics' range: the current signature's day, both ends included."""

    date_from = serializers.DateField(required=False, help_text="first day (YYYY-MM-DD), included")
    date_to = serializers.DateField(required=False, help_text="last day (YYYY-MM-DD), included")

    def validate(self, attrs):
        if attrs.get("date_from") and attrs.get("date_to") and attrs["date_from"] > attrs["date_to"]:
            raise serializers.ValidationError({"date_to": ["the end of the range is before its start"]})
        return attrs


class VerdictCountsSerializer(serializers.Serializer):
    agree = serializers.IntegerField()
    disagree = serializers.IntegerField()
    not_assessable = serializers.IntegerField()
    not_recorded = serializers.IntegerField(help_text="signed without a verdict")


class CalibrationBinSerializer(serializers.Serializer):
    lower = serializers.FloatField()
    upper = serializers.FloatField()
    n = serializers.IntegerField()
    mean_confidence = serializers.FloatField(allow_null=True)
    observed_agreement = serializers.FloatField(allow_null=True)


class CalibrationSerializer(serializers.Serializer):
    n = serializers.IntegerField(help_text="reports with agree or disagree and a confidence")
    bins = CalibrationBinSerializer(many=True)
    ece = serializers.FloatField(allow_null=True,
                                 help_text="expected calibration error: sum n_bin/n |agreement - confidence|")


class TimeToSignSerializer(serializers.Serializer):
    n = serializers.IntegerField()
    median_s = serializers.FloatField(allow_null=True)
    p90_s = serializers.FloatField(allow_null=True)
    from_event = serializers.IntegerField(help_text="times measured from the FINALISED pipeline event")
    from_explanation = serializers.IntegerField(help_text="times measured from explanation_generated_at (no event)")


class AnalyticsSummarySerializer(serializers.Serializer):
    n = serializers.IntegerField()
    verdicts = VerdictCountsSerializer()
    agreement_rate = serializers.FloatField(allow_null=True, help_text="agree / (agree + disagree)")
    calibration = CalibrationSerializer()
    time_to_sign = TimeToSignSerializer()


class AnalyticsLabelSerializer(AnalyticsSummarySerializer):
    label = serializers.CharField(help_text="the AI label of the study")


class ConfusionRowSerializer(serializers.Serializer):
    ai_label = serializers.CharField()
    counts = serializers.ListField(child=serializers.IntegerField(), help_text="one per column")
    total = serializers.IntegerField()


class ConfusionSerializer(serializers.Serializer):
    columns = serializers.ListField(child=serializers.CharField(),
                                    help_text="the radiologist's label: the four classes, any other AI label "
                                              "agreed with, then not_assessable")
    rows = ConfusionRowSerializer(many=True)


class AnalyticsModelSerializer(AnalyticsSummarySerializer):
    model_name = serializers.CharField()
    model_version = serializers.CharField()
    labels = AnalyticsLabelSerializer(many=True)
    confusion = ConfusionSerializer()


class AnalyticsSerializer(serializers.Serializer):
    """scans.services.analytics.reviewer_analytics, as served by GET /api/v1/analytics/."""

    date_from = serializers.DateField(allow_null=True)
    date_to = serializers.DateField(allow_null=True)
    n = serializers.IntegerField()
    bins = serializers.IntegerField()
    models = AnalyticsModelSerializer(many=True)
