"""The reviewer analytics page: signed verdicts against the AI, per model and label (no PHI)."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponseNotAllowed
from django.shortcuts import render

from scans.forms import AnalyticsFilterForm
from scans.models import Via
from scans.permissions import ANALYTICS
from scans.services.analytics import view_analytics
from scans.views.common import client_ip


@login_required
def analytics(request):
    """Radiologists and admins (403 before anything else, even the method); GET only; a bad
    date range answers 400 with the form's errors."""
    ANALYTICS.require(request.user, "view the reviewer analytics")
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET"])
    form = AnalyticsFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        return render(request, "scans/analytics.html", {"form": form, "figures": None}, status=400)
    dates = form.cleaned_data if form.is_bound else {}
    figures = view_analytics(request.user, via=Via.PORTAL, ip_address=client_ip(request),
                             date_from=dates.get("date_from"), date_to=dates.get("date_to"))
    return render(request, "scans/analytics.html", {"form": form, "figures": figures})
