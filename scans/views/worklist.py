"""The worklist: current reports, AI-positive and low-confidence first, with filters."""
from __future__ import annotations

from django.core.paginator import Paginator
from django.shortcuts import render
from django.views.decorators.http import require_GET

from scans import selectors
from scans.forms import WorklistFilterForm
from scans.views.common import clinic_user_required

PAGE_SIZE = 50


@clinic_user_required
@require_GET
def worklist(request):
    form = WorklistFilterForm(request.GET or None)
    f = form.cleaned_data if form.is_valid() else {}
    status = f.get("status") or None  # None: the selector's default, reports still to read
    if status == WorklistFilterForm.ALL:
        status = [value for value, _ in WorklistFilterForm.STATUS_VALUES]
    rows = selectors.worklist(status=status, label=f.get("label") or None, since=f.get("date_from"),
                              until=f.get("date_to"), q=(f.get("patient") or "").strip() or None)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "scans/worklist.html", {
        "form": form, "page": page, "reports": page.object_list, "query": query.urlencode(),
        "filtered": any(f.get(k) for k in ("status", "label", "patient", "date_from", "date_to")),
    })
