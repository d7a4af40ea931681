"""Django admin: browse everything, change nothing directly.

Rows are read-only here; the actions (re-run analysis, regenerate explanation, mark
failed, send results again) call the same scans.services verbs as the portal and the API.
The one exception is configuration, not patient data: the result destinations
(Destination) and the notification targets (NotificationTarget) are added and edited here.
"""
from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.views.decorators.debug import sensitive_post_parameters

from scans import services
from scans.models import (
    Analysis, AuditAction, AuditEvent, Delivery, Destination, DicomInstance, Notification, NotificationTarget,
    NotifyEvent, Patient, Priority, Report, Scan, Series, Study, TargetKind, Upload, Via,
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
class PatientAdmin(AuditedPageAdmin):
    """Names, birth dates and ids: opening a patient's page and each page of the list is audited."""

    list_display = ["patient_id", "name", "birth_date", "sex", "created_at"]
    search_fields = ["patient_id", "name"]
    list_filter = ["sex"]

    def record(self, request, patient):
        services.record_read(AuditAction.VIEW_PATIENT, request.user, via=Via.ADMIN, ip_address=client_ip(request),
                             patient=patient.pk)

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", None) and response.context_data.get("cl")
        if request.method == "GET" and response.status_code == 200 and changelist is not None:
            services.record_read(AuditAction.LIST_PATIENTS, request.user, via=Via.ADMIN,
                                 ip_address=client_ip(request), ids=[p.pk for p in changelist.result_list])
        return response


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
    list_display = ["id", "patient", "description", "status", "priority", "progress_display", "model_display",
                    "created_at"]
    list_filter = ["status", "priority", "modality", "created_at"]
    search_fields = ["patient__patient_id", "patient__name", "description", "study_instance_uid"]
    list_select_related = ["patient"]
    inlines = [ScanInline]
    actions = ["rerun_analysis", "regenerate_explanation", "mark_failed", "priority_urgent", "priority_routine",
               "priority_research"]
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

    def _set_priority(self, request, queryset, priority):
        _run(self, request, queryset,
             lambda s: services.set_priority(s, priority, user=request.user, via=Via.ADMIN), f"Priority {priority}")

    # scans.services.set_priority: audited, and a study's waiting gpu work moves to the new lane.
    @admin.action(description="Priority: urgent")
    def priority_urgent(self, request, queryset):
        self._set_priority(request, queryset, Priority.URGENT)

    @admin.action(description="Priority: routine")
    def priority_routine(self, request, queryset):
        self._set_priority(request, queryset, Priority.ROUTINE)

    @admin.action(description="Priority: research")
    def priority_research(self, request, queryset):
        self._set_priority(request, queryset, Priority.RESEARCH)


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


class DestinationForm(forms.ModelForm):
    """The STOW-RS password and token are written, never shown back: left empty, the stored
    value is kept; "clear" empties it. ``env:NAME`` stores only the name of an environment
    variable of the outbound worker, read at send time (Destination.secret)."""

    password = forms.CharField(required=False, max_length=200, widget=forms.PasswordInput(render_value=False))
    token = forms.CharField(label="Bearer token", required=False, max_length=500,
                            widget=forms.PasswordInput(render_value=False))
    url = forms.URLField(label="STOW-RS URL", max_length=500, required=False, assume_scheme="https")
    clear_password = forms.BooleanField(label="Clear the password", required=False)
    clear_token = forms.BooleanField(label="Clear the token", required=False)

    class Meta:
        model = Destination
        fields = "__all__"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in ("password", "token"):
            self.fields[field].help_text = (
                f"{self._stored(field)} Never shown again: leave empty to keep it. Write env:NAME to read it "
                "from the environment variable NAME of the outbound worker instead of storing it here.")

    def _stored(self, field: str) -> str:
        value = getattr(self.instance, field, "") if self.instance.pk else ""
        if not value:
            return "None stored."
        if value.startswith("env:"):
            return f"Read from the environment variable {value[4:]}."
        return "A value is stored."

    def _kept(self, field: str) -> str:
        if self.cleaned_data.get(f"clear_{field}"):
            return ""
        return self.cleaned_data.get(field) or (getattr(self.instance, field) if self.instance.pk else "")

    def clean(self):
        data = super().clean()  # then the model's clean (env:NAME syntax) sees the kept values
        data["password"], data["token"] = self._kept("password"), self._kept("token")
        return data


@admin.register(Destination)
class DestinationAdmin(admin.ModelAdmin):
    """Where results go back to, and the rule of what to send when (editable: configuration)."""

    form = DestinationForm
    list_display = ["name", "kind", "enabled", "ae_title", "host", "port", "url",
                    "send_preliminary", "send_signed", "send_overlays"]
    list_filter = ["kind", "enabled"]
    search_fields = ["name", "ae_title", "host", "url"]
    fieldsets = [
        (None, {"fields": ["name", "kind", "enabled"]}),
        ("DICOM C-STORE", {"fields": ["ae_title", "host", "port"]}),
        ("DICOMweb STOW-RS", {"fields": ["url", "username", "password", "clear_password", "token", "clear_token"]}),
        ("What to send when", {"fields": ["send_preliminary", "send_signed", "send_overlays"]}),
    ]

    @method_decorator(sensitive_post_parameters("password", "token"))
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # Error reports (500 e-mails, the debug page) show these POST fields as stars.
        return super().changeform_view(request, object_id, form_url, extra_context)


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


class NotificationTargetForm(forms.ModelForm):
    """The HMAC secret is written, never shown back: left empty, the stored one is kept."""

    secret = forms.CharField(
        label="HMAC secret", required=False, widget=forms.PasswordInput(render_value=False),
        help_text="Signs each webhook body (X-BrainAI-Signature). Never shown again; leave empty to keep the "
                  "current one.")
    url = forms.URLField(label="URL", max_length=500, required=False, assume_scheme="https")
    events = forms.MultipleChoiceField(choices=NotifyEvent.choices, required=False,
                                       widget=forms.CheckboxSelectMultiple, help_text="None ticked: every event.")

    class Meta:
        model = NotificationTarget
        fields = ["name", "kind", "enabled", "url", "secret", "emails", "events", "include_phi"]

    def clean_secret(self):
        return self.cleaned_data.get("secret") or (self.instance.secret if self.instance.pk else "")

    def clean(self):
        data = super().clean()
        if data.get("kind") == TargetKind.WEBHOOK:
            if not data.get("url"):
                self.add_error("url", "A webhook needs a URL.")
            elif not data["url"].lower().startswith(("http://", "https://")):
                self.add_error("url", "Only http:// and https:// URLs are posted to.")
            if not data.get("secret"):
                self.add_error("secret", "A webhook needs an HMAC secret.")
        elif data.get("kind") == TargetKind.EMAIL:
            addresses = [a.strip() for a in (data.get("emails") or "").split(",") if a.strip()]
            if not addresses:
                self.add_error("emails", "Give at least one address (comma-separated).")
            for address in addresses:
                try:
                    validate_email(address)
                except ValidationError:
                    self.add_error("emails", f"Not an e-mail address: {address}")
            data["emails"] = ", ".join(addresses)
        return data


@admin.register(NotificationTarget)
class NotificationTargetAdmin(admin.ModelAdmin):
    """Who is told when a report is ready, signed, amended or failed (editable: configuration)."""

    form = NotificationTargetForm
    list_display = ["name", "kind", "enabled", "url", "emails", "events", "include_phi"]
    list_filter = ["kind", "enabled", "include_phi"]
    search_fields = ["name", "url", "emails"]
    fieldsets = [
        (None, {"fields": ["name", "kind", "enabled", "events"]}),
        ("Webhook (HTTP POST, JSON, HMAC-SHA256 signed)", {"fields": ["url", "secret"]}),
        ("E-mail", {"fields": ["emails"]}),
        ("Patient data", {"fields": ["include_phi"],
                          "description": "Off: the patient's name, id, birth date and the study's UID, description "
                                         "and date are sent as UNKNOWN. Turn on only for a destination allowed "
                                         "to receive patient data."}),
    ]


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    """The delivery log: every webhook and e-mail, its attempts and the last error."""

    list_display = ["id", "target", "study_id", "event", "report_version", "status", "attempts", "reason", "sent_at",
                    "updated_at"]
    list_filter = ["status", "event", "target"]
    search_fields = ["target__name", "reason"]
    list_select_related = ["target"]
    actions = ["resend"]

    @admin.action(description="Resend (fresh attempts)")
    def resend(self, request, queryset):
        _run(self, request, queryset, lambda n: services.resend_notification(n, request.user, via=Via.ADMIN),
             "Queued again")


class TakenInFilter(admin.SimpleListFilter):
    title = "taken in"
    parameter_name = "taken_in"

    def lookups(self, request, model_admin):
        return [("no", "Waiting (not taken in yet)"), ("yes", "Taken in")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(taken_in_at__isnull=self.value() == "no")
        return queryset


class DuplicatesFilter(admin.SimpleListFilter):
    title = "received again"
    parameter_name = "duplicated"

    def lookups(self, request, model_admin):
        return [("yes", "Received more than once"), ("no", "Received once")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(duplicates__gt=0)
        if self.value() == "no":
            return queryset.filter(duplicates=0)
        return queryset


@admin.register(DicomInstance)
class DicomInstanceAdmin(ReadOnlyAdmin):
    """The DICOM inbox (scans.services.dicom_inbox): every instance received over C-STORE,
    waiting or taken in, and above the list a summary per study (waiting vs taken in).

    Not an audited read: the rows hold the sender's AE title, UIDs, times and counts, never a
    patient's name, id, birth date or pixels. The study page an upload link leads to is
    audited when opened, as every page with patient data is (docs/integration.md).
    """

    list_display = ["received_at", "calling_ae", "study_instance_uid", "sop_instance_uid", "taken_in",
                    "taken_in_at", "duplicates", "upload_link"]
    list_filter = [TakenInFilter, DuplicatesFilter, "calling_ae", "received_at"]
    search_fields = ["study_instance_uid", "sop_instance_uid", "calling_ae"]
    date_hierarchy = "received_at"
    fields = ["received_at", "calling_ae", "study_instance_uid", "sop_instance_uid", "path", "duplicates",
              "taken_in_at", "upload_link"]
    readonly_fields = fields
    actions = None

    @admin.display(description="taken in", boolean=True, ordering="taken_in_at")
    def taken_in(self, row):
        return row.taken_in_at is not None

    @admin.display(description="upload")
    def upload_link(self, row):
        if row.upload_id is None:
            return "—"
        return format_html('<a href="{}">upload {}</a>', reverse("admin:scans_upload_change", args=[row.upload_id]),
                           row.upload_id)

    def changelist_view(self, request, extra_context=None):
        from scans.selectors import dicom_inbox_studies

        extra = {"inbox_studies": dicom_inbox_studies(), "group_by": settings.BRAINAI_DICOM_GROUP_BY,
                 "quiet_s": settings.BRAINAI_DICOM_STUDY_QUIET_S, **(extra_context or {})}
        return super().changelist_view(request, extra)


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
