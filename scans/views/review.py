"""The radiologist's actions on a report: save the review, sign, amend, new explanation.

Each calls one scans.services verb; the services check the role and the report's state.
"""
from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from scans import selectors, services
from scans.forms import ReviewForm, SignOffForm
from scans.models import Via
from scans.views.common import call_service, client_ip, clinic_user_required, get_or_404
from scans.views.report import report_context


def _report(pk: int):
    return selectors.reports(current_only=False).get(pk=pk)


def _invalid(request, pk: int, **forms):
    """The report page again, with the form's errors (a view of the report: audited)."""
    report = get_or_404(selectors.report_detail, pk, "report")
    services.record_view(report, request.user, via=Via.PORTAL, ip_address=client_ip(request))
    return render(request, "scans/report.html", report_context(request.user, report, **forms), status=400)


@clinic_user_required
@require_POST
def save_review(request, pk: int):
    report = get_or_404(_report, pk, "report")
    form = SignOffForm(request.POST, ai_label=report.label)
    if not form.is_valid():
        return _invalid(request, pk, form=form)
    call_service(request, services.update_review, report, request.user, form.cleaned_data["findings"],
                 form.cleaned_data["impression"], via=Via.PORTAL, ip_address=client_ip(request),
                 verdict=form.cleaned_data["verdict"], verdict_label=form.cleaned_data["verdict_label"],
                 success="Review saved (not signed yet).")
    return redirect("scans:report", pk=pk)


@clinic_user_required
@require_POST
def sign(request, pk: int):
    """Save the text as shown in the form (if it changed) and the verdict, then sign."""
    report = get_or_404(_report, pk, "report")
    form = SignOffForm(request.POST, ai_label=report.label)
    if not form.is_valid():
        return _invalid(request, pk, form=form)
    call_service(request, services.sign_report, report, request.user, findings=form.cleaned_data["findings"],
                 impression=form.cleaned_data["impression"], verdict=form.cleaned_data["verdict"],
                 verdict_label=form.cleaned_data["verdict_label"], via=Via.PORTAL, ip_address=client_ip(request),
                 success="Report signed. It can no longer be edited; amend it to correct it.")
    return redirect("scans:report", pk=pk)


@clinic_user_required
@require_POST
def amend(request, pk: int):
    report = get_or_404(_report, pk, "report")
    form = ReviewForm(request.POST, prefix="amend")
    if not form.is_valid():
        return _invalid(request, pk, amend_form=form)
    new = call_service(request, services.amend_report, report, request.user, form.cleaned_data["findings"],
                       form.cleaned_data["impression"], via=Via.PORTAL, ip_address=client_ip(request))
    if new is None:
        return redirect("scans:report", pk=pk)
    messages.success(request, f"Amendment signed as version {new.version}; "
                              f"version {report.version} is kept unchanged.")
    return redirect("scans:report", pk=new.pk)


@clinic_user_required
@require_POST
def regenerate_explanation(request, pk: int):
    report = get_or_404(_report, pk, "report")
    call_service(request, services.regenerate_explanation, report, request.user, via=Via.PORTAL,
                 success="A new explanation has been requested; the current one stays until it arrives.")
    return redirect("scans:report", pk=pk)


@clinic_user_required
@require_POST
def request_detail(request, pk: int):
    """Queue saliency and the faithfulness check for one slice (``scan``) or every slice."""
    report = get_or_404(_report, pk, "report")
    scan = request.POST.get("scan")
    scan_ids = [scan] if scan and scan.isdigit() else None
    call_service(request, services.request_detail, report, request.user, scan_ids, via=Via.PORTAL,
                 ip_address=client_ip(request),
                 success="Saliency and the faithfulness check have been queued; reload the page in a minute.")
    return redirect("scans:report", pk=pk)
