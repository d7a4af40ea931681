"""Django admin: browse everything, change nothing directly.

Rows are read-only here; the actions (re-run analysis, regenerate explanation, mark
failed, send results again) call the same scans.services verbs as the portal and the API.
The one exception is configuration, not patient data: the result destinations
(Destination) are added and edited here.
"""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import PermissionDenied
from django.utils.html import format_html

from scans import services
from scans.models import (
    Analysis, AuditAction, AuditEvent, Delivery, Destination, Patient, Report, Scan, Series, Study, Upload, Via,
)
from scans.views.common import client_ip


class ReasonActionForm(ActionForm):
    reason = forms.CharField(required=False, label="Reason (for “mark failed”)",
                             widget=forms.TextInput(attrs={"size": 40}))


def _thumb(field, size: int = 64):
    if not field or not field.name:
        return "—"
    return format_html('<img src="{}" alt="" style="width:{}px;height:{}px;object-fit:contain;background:#000">',
                       field.url, size, size)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Everything visible, nothing editable: state changes go through the actions."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class AuditedPageAdmin(ReadOnlyAdmin):
    """An admin whose pages show patient data: opening one is an audit event (``record``)."""

    def record(self, request, obj) -> None:
        raise NotImplementedError

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        if request.method == "GET" and response.status_code == 200:
            obj = self.get_object(request, object_id)
            if obj is not None:
                self.record(request, obj)
        return response


def _run(modeladmin, request, items, verb, done: str):
    ok = 0
    for item in items:
        try:
            verb(item)
            ok += 1
        except (services.ServiceError, PermissionDenied) as exc:
            modeladmin.message_user(request, f"{item}: {exc}", messages.WARNING)
    if ok:
        modeladmin.message_user(request, f"{done}: {ok}", messages.SUCCESS)


def _reason(request) -> str:
    return (request.POST.get("reason") or "").strip() or "marked failed by an administrator"


@admin.register(Patient)
class PatientAdmin(ReadOnlyAdmin):
    list_display = ["patient_id", "name", "birth_date", "sex", "created_at"]
    search_fields = ["patient_id", "name"]
    list_filter = ["sex"]


class ReadOnlyInline(admin.TabularInline):
    """Rows shown under their parent, none added, changed or deleted here."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class ScanInline(ReadOnlyInline):
    model = Scan
    fields = ["thumbnail", "instance_number", "frame_index", "status", "attempts", "error"]
    readonly_fields = fields
    show_change_link = True

    @admin.display(description="image")
    def thumbnail(self, scan):
        return _thumb(scan.image)


@admin.register(Study)
class StudyAdmin(AuditedPageAdmin):
    list_display = ["id", "patient", "description", "status", "progress_display", "model_display", "created_at"]
    list_filter = ["status", "modality", "created_at"]
    search_fields = ["patient__patient_id", "patient__name", "description", "study_instance_uid"]
    list_select_related = ["patient"]
    inlines = [ScanInline]
    actions = ["rerun_analysis", "regenerate_explanation", "mark_failed"]
    action_form = ReasonActionForm

    def record(self, request, study):
        services.record_read(AuditAction.VIEW_STUDY, request.user, via=Via.ADMIN, ip_address=client_ip(request),
                             study_id=study.pk)

    @admin.display(description="progress")
    def progress_display(self, study):
        p = study.progress
        return f"{p.done}/{p.total}" + (f" ({p.failed} failed)" if p.failed else "")

    @admin.display(description="model", ordering="requested_model")
    def model_display(self, study):
        return study.requested_model or "default"

    @admin.action(description="Re-run analysis")
    def rerun_analysis(self, request, queryset):
        _run(self, request, queryset, lambda s: services.rerun_analysis(s, request.user, via=Via.ADMIN), "Re-queued")

    @admin.action(description="Regenerate explanation")
    def regenerate_explanation(self, request, queryset):
        def verb(study):
            report = study.report
            if report is None:
                raise services.InvalidState("no report yet")
            services.regenerate_explanation(report, request.user, via=Via.ADMIN)
        _run(self, request, queryset, verb, "Explanation requested")

    @admin.action(description="Mark failed (give a reason)")
    def mark_failed(self, request, queryset):
        _run(self, request, queryset, lambda s: services.mark_failed(s, request.user, _reason(request), via=Via.ADMIN),
             "Marked failed")


@admin.register(Series)
class SeriesAdmin(ReadOnlyAdmin):
    list_display = ["id", "study", "number", "description", "modality"]
    search_fields = ["series_instance_uid", "description"]


@admin.register(Scan)
class ScanAdmin(ReadOnlyAdmin):
    list_display = ["id", "thumbnail", "study", "instance_number", "frame_index", "status", "attempts", "label"]
    list_filter = ["status", "analysis__label", "created_at"]
    search_fields = ["study__patient__patient_id", "sha256", "sop_instance_uid"]
    list_select_related = ["study", "analysis"]
    readonly_fields = ["preview", "overlay"]
    actions = ["mark_failed"]
    action_form = ReasonActionForm

    @admin.display(description="image")
    def thumbnail(self, scan):
        return _thumb(scan.image)

    @admin.display(description="preview")
    def preview(self, scan):
        return _thumb(scan.image, 256)

    @admin.display(description="heatmap overlay")
    def overlay(self, scan):
        analysis = getattr(scan, "analysis", None)
        return _thumb(analysis.overlay, 256) if analysis else "—"

    @admin.display(description="AI label")
    def label(self, scan):
        analysis = getattr(scan, "analysis", None)
        return analysis.label if analysis else "—"

    @admin.action(description="Mark failed (give a reason)")
    def mark_failed(self, request, queryset):
        _run(self, request, queryset, lambda s: services.mark_failed(s, request.user, _reason(request), via=Via.ADMIN),
             "Marked failed")


@admin.register(Analysis)
class AnalysisAdmin(ReadOnlyAdmin):
    list_display = ["id", "overlay_thumb", "scan", "label", "confidence", "in_distribution", "model_name",
                    "model_version", "created_at"]
    list_filter = ["label", "in_distribution", "model_name"]
    search_fields = ["scan__study__patient__patient_id"]
    readonly_fields = ["overlay_large", "heatmap_large"]

    @admin.display(description="overlay")
    def overlay_thumb(self, analysis):
        return _thumb(analysis.overlay)

    @admin.display(description="overlay")
    def overlay_large(self, analysis):
        return _thumb(analysis.overlay, 256)

    @admin.display(description="heatmap")
    def heatmap_large(self, analysis):
        return _thumb(analysis.heatmap, 256)


class DeliveryInline(ReadOnlyInline):
    model = Delivery
    fields = ["destination", "verified", "status", "attempts", "reason", "sent_at"]
    readonly_fields = fields


@admin.register(Report)
class ReportAdmin(AuditedPageAdmin):
    list_display = ["id", "study", "version", "is_current", "status", "label", "confidence", "signed_by", "created_at"]
    list_filter = ["status", "label", "is_current", "explanation_provider"]
    search_fields = ["study__patient__patient_id", "study__patient__name", "study__description"]
    list_select_related = ["study", "signed_by"]
    readonly_fields = ["key_overlay"]
    actions = ["rerun_analysis", "regenerate_explanation", "mark_failed"]
    action_form = ReasonActionForm
    inlines = [DeliveryInline]  # what was sent back to the PACS, and what failed

    def record(self, request, report):
        services.record_view(report, request.user, via=Via.ADMIN, ip_address=client_ip(request))

    @admin.display(description="key slice overlay")
    def key_overlay(self, report):
        analysis = getattr(report.key_scan, "analysis", None) if report.key_scan else None
        return _thumb(analysis.overlay, 256) if analysis else "—"

    @admin.action(description="Re-run analysis of the study")
    def rerun_analysis(self, request, queryset):
        _run(self, request, queryset, lambda r: services.rerun_analysis(r.study, request.user, via=Via.ADMIN), "Re-queued")

    @admin.action(description="Regenerate explanation")
    def regenerate_explanation(self, request, queryset):
        _run(self, request, queryset, lambda r: services.regenerate_explanation(r, request.user, via=Via.ADMIN),
             "Explanation requested")

    @admin.action(description="Mark the study failed (give a reason)")
    def mark_failed(self, request, queryset):
        _run(self, request, queryset, lambda r: services.mark_failed(r.study, request.user, _reason(request), via=Via.ADMIN),
             "Marked failed")


@admin.register(Destination)
class DestinationAdmin(admin.ModelAdmin):
    """Where results go back to, and the rule of what to send when (editable: configuration)."""

    list_display = ["name", "kind", "enabled", "ae_title", "host", "port", "url",
                    "send_preliminary", "send_signed", "send_overlays"]
    list_filter = ["kind", "enabled"]
    search_fields = ["name", "ae_title", "host", "url"]
    fieldsets = [
        (None, {"fields": ["name", "kind", "enabled"]}),
        ("DICOM C-STORE", {"fields": ["ae_title", "host", "port"]}),
        ("DICOMweb STOW-RS", {"fields": ["url", "username", "password", "token"]}),
        ("What to send when", {"fields": ["send_preliminary", "send_signed", "send_overlays"]}),
    ]


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ["id", "report", "destination", "verified", "status", "attempts", "reason", "sent_at", "updated_at"]
    list_filter = ["status", "destination", "verified"]
    search_fields = ["destination__name", "reason"]
    list_select_related = ["report", "destination"]
    actions = ["retry"]

    @admin.action(description="Send again (fresh attempts)")
    def retry(self, request, queryset):
        _run(self, request, queryset, lambda d: services.retry_delivery(d, request.user, via=Via.ADMIN), "Queued again")


@admin.register(Upload)
class UploadAdmin(ReadOnlyAdmin):
    list_display = ["id", "uploaded_by", "files_received", "accepted", "rejected_count", "created_at"]
    date_hierarchy = "created_at"

    @admin.display(description="rejected")
    def rejected_count(self, upload):
        return len(upload.rejected)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    # Ids, not links: the study or report may have been deleted since (the row keeps the id).
    list_display = ["created_at", "actor_username", "action", "via", "study_id", "report_id", "ip_address"]
    list_filter = ["action", "via", "created_at"]
    search_fields = ["actor_username"]
    date_hierarchy = "created_at"
