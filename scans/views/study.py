"""A study: live analysis progress ("n of m analysed") and its scans."""
from __future__ import annotations

from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from scans import permissions, selectors, services
from scans.models import ReportStatus, StudyStatus, Via
from scans.views.common import call_service, clinic_user_required, get_or_404

# The study is still moving while it is in one of these; the page keeps polling.
BUSY = (StudyStatus.ANALYZING, StudyStatus.EXPLAINING)


def progress_of(study, report) -> dict:
    """What the progress endpoint answers and the page renders first."""
    p = study.progress
    return {
        "id": study.pk, "status": study.status, "status_display": study.get_status_display(),
        "total": p.total, "analysed": p.analyzed, "failed": p.failed, "percent": p.percent,
        "done": study.status not in BUSY,
        "report_url": reverse("scans:report", args=[report.pk]) if report else None,
        "report_ready": bool(report) and report.status != ReportStatus.PROCESSING,
        "error": report.failure_reason if report and report.status == ReportStatus.FAILED else "",
    }


@clinic_user_required
@require_GET
def study(request, pk: int):
    study = get_or_404(selectors.study_detail, pk, "study")
    report = study.report
    return render(request, "scans/study.html", {
        "study": study, "report": report, "progress": progress_of(study, report),
        "scans": study.scans.all(), "can_rerun": permissions.RERUN(request.user),
    })


@clinic_user_required
@require_GET
def study_progress(request, pk: int):
    study = get_or_404(_study_with_counts, pk, "study")
    return JsonResponse(progress_of(study, study.report))


def _study_with_counts(pk: int):
    return selectors.studies().get(pk=pk)


@clinic_user_required
@require_POST
def rerun(request, pk: int):
    """Analyse the study again (radiologists and admins; the service says no to others)."""
    study = get_or_404(_study_with_counts, pk, "study")
    call_service(request, services.rerun_analysis, study, request.user, via=Via.PORTAL,
                 success="The analysis will run again.")
    return redirect("scans:study", pk=pk)
