"""The report page: every slice with its maps, the AI finding, the explanation, the review."""
from __future__ import annotations

from django.shortcuts import render
from django.views.decorators.http import require_GET

from scans import permissions, selectors, services, slice_facts, snapshot
from scans.forms import ReviewForm, SignOffForm
from scans.models import Label, ScanStatus, Via
from scans.views.common import client_ip, clinic_user_required, get_or_404


@clinic_user_required
@require_GET
def report(request, pk: int):
    report = get_or_404(selectors.report_detail, pk, "report")
    services.record_view(report, request.user, via=Via.PORTAL, ip_address=client_ip(request))
    return render(request, "scans/report.html", report_context(request.user, report))


def report_context(user, report, form: SignOffForm | None = None, amend_form: ReviewForm | None = None) -> dict:
    """Everything the report page (and the print view) shows; scans come prefetched.

    A signed version shows its snapshot (scans.snapshot.apply), not the rows as they are now.
    """
    frozen = snapshot.apply(report)
    slices = frozen if frozen is not None else list(report.study.scans.all())
    initial = {"findings": report.findings, "impression": report.impression}
    return {
        "report": report, "study": report.study, "patient": report.study.patient, "slices": slices,
        "warnings": guard_warnings(report, slices),
        # The key slice and its heatmap check (a warning when the map does no better than random).
        "key_slice": next((s for s in slices if s.pk == report.key_scan_id), None) if report.key_scan_id else None,
        "key_heatmap": slice_facts.key_slice_heatmap(report, slices),
        "snapshot_intact": snapshot.is_intact(report),
        "versions": selectors.report_versions(report).select_related("signed_by"),
        "deliveries": report.deliveries.select_related("destination").order_by("created_at"),
        "can_edit": permissions.can_edit(user, report),
        "can_amend": permissions.can_amend(user, report),
        "can_regenerate": permissions.can_regenerate(user, report),
        "can_request_detail": permissions.EXPLAIN(user) and report.is_current,
        "form": form or SignOffForm(initial={**initial, "verdict": report.verdict,
                                             "verdict_label": report.verdict_label}, ai_label=report.label),
        "amend_form": amend_form or ReviewForm(initial=initial, prefix="amend"),
    }


def guard_warnings(report, slices) -> list[str]:
    """The input guard's objections in words: images that are not brain MRI, or unlike training."""
    analyses = [a for a in (getattr(s, "analysis", None) for s in slices) if a is not None]
    not_mri = sum(a.label == Label.NOT_BRAIN_MRI for a in analyses)
    ood = sum(not a.in_distribution and a.label != Label.NOT_BRAIN_MRI for a in analyses)
    failed = sum(s.status == ScanStatus.FAILED for s in slices)
    n = len(slices)
    out = []
    if not_mri:
        out.append(f"Not a brain MRI: {not_mri} of {n} image{_s(n)} did not look like a brain MRI to the input "
                   "guard (label not_brain_mri). The tumour classifier's output for them is not meaningful.")
    elif report.label == Label.NOT_BRAIN_MRI:
        out.append("Not a brain MRI: the input guard labelled this study not_brain_mri. "
                   "The tumour classifier's output is not meaningful.")
    if ood:
        out.append(f"Out of distribution: {ood} of {n} slice{_s(n)} look unlike the images the model was "
                   "trained on, so its probabilities for them may be unreliable.")
    if failed:
        out.append(f"{failed} of {n} slice{_s(n)} could not be analysed; the reasons are shown with each slice.")
    return out


def _s(n: int) -> str:
    return "" if n == 1 else "s"
