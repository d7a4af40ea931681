"""A clean printable report (the browser's "Save as PDF" makes the PDF)."""
from __future__ import annotations

from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from scans import selectors, services
from scans.models import Via
from scans.views.common import client_ip, clinic_user_required, get_or_404
from scans.views.report import report_context


@clinic_user_required
@require_GET
def report_print(request, pk: int):
    report = get_or_404(selectors.report_detail, pk, "report")
    services.record_view(report, request.user, via=Via.PORTAL, ip_address=client_ip(request))
    context = report_context(request.user, report)
    context["printed_at"] = timezone.now()
    # The slice that decided the AI finding, shown large; every slice is listed in a table.
    context["key_slices"] = [s for s in context["slices"] if s.pk == report.key_scan_id]
    return render(request, "scans/report_print.html", context)
