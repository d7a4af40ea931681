"""The operator's queue view (issue #20): studies in flight or failed, lanes, workers,
and the actions (retry, cancel, priority), each one scans.services verb.

Operators see ids, stages, counts and reasons, never patient data. Operators and admins
only (scans.permissions.OPERATE); anyone else signed in gets 403.
"""
from __future__ import annotations

from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from scans import permissions, selectors
from scans.models import Priority, Scan, Study, Via
from scans.services import operations, queue
from scans.services.priority import set_priority
from scans.views.common import call_service, get_or_404

WORKER_PING_TIMEOUT_S = 1.0


def operator_required(view):
    """Signed in (else the login page), and an operator or admin (else 403)."""
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not permissions.OPERATE(request.user):
            raise PermissionDenied("only operators and admins may use the operator's view")
        return view(request, *args, **kwargs)
    return login_required(wrapper)


def queue_state(now=None) -> dict:
    """What the page and GET /api/v1/operator/queue/ show: the rows, the lanes, the workers.
    ``lanes``/``workers`` are None when the broker is unreachable."""
    now = now or timezone.now()
    lanes = queue.lane_lengths()
    workers = queue.workers_alive(timeout=WORKER_PING_TIMEOUT_S) if lanes is not None else None
    return {"now": now, "rows": selectors.operator_queue(now=now), "lanes": lanes, "workers": workers,
            "broker_up": lanes is not None and workers is not None}


@operator_required
@require_GET
def operator_queue(request):
    state = queue_state()
    now = state["now"]
    rows = [{"row": r, "waiting_s": r.waiting_s(now), "idle_s": r.idle_s(now)} for r in state["rows"]]
    return render(request, "scans/operator.html", {
        **state, "rows": rows, "priorities": Priority.choices,
        "stuck_after_min": settings.BRAINAI_STUCK_AFTER_MIN,
        "n_stuck": sum(r.stuck for r in state["rows"]),
    })


def _study(pk: int):
    return Study.objects.get(pk=pk)


def _scan(pk: int):
    return Scan.objects.get(pk=pk)


@operator_required
@require_GET
def study_events(request, pk: int):
    events = get_or_404(selectors.study_events, pk, "study")
    study = _study(pk)
    return render(request, "scans/operator_events.html", {
        "study": study, "events": events, "rows": selectors.operator_queue(study_id=pk),
        "failed_scans": study.scans.filter(status="failed").only("pk", "attempts", "worker").order_by("pk")[:200],
    })


@operator_required
@require_POST
def retry_study(request, pk: int):
    study = get_or_404(_study, pk, "study")
    call_service(request, operations.retry_study, study, user=request.user, via=Via.PORTAL,
                 success=f"Study {pk}: retry queued.")
    return _back(request)


@operator_required
@require_POST
def retry_scan(request, pk: int):
    scan = get_or_404(_scan, pk, "scan")
    call_service(request, operations.retry_scan, scan, user=request.user, via=Via.PORTAL,
                 success=f"Scan {pk} of study {scan.study_id}: retry queued.")
    return _back(request)


@operator_required
@require_POST
def cancel_study(request, pk: int):
    study = get_or_404(_study, pk, "study")
    call_service(request, operations.cancel_study, study, user=request.user, via=Via.PORTAL,
                 success=f"Study {pk}: what was left to analyse is cancelled.")
    return _back(request)


@operator_required
@require_POST
def change_priority(request, pk: int):
    study = get_or_404(_study, pk, "study")
    value = request.POST.get("priority", "")
    if value not in Priority.values:
        messages.error(request, f"Priority must be one of {', '.join(Priority.values)}.")
        return _back(request)
    changed = call_service(request, set_priority, study, value, user=request.user, via=Via.PORTAL)
    if changed:
        messages.success(request, f"Study {pk}: priority is now {value}.")
    elif changed is False:
        messages.info(request, f"Study {pk} already has priority {value}.")
    return _back(request)


def _back(request):
    """To the page the form was on (an events page posts with ``next``), else the queue."""
    target = request.POST.get("next", "")
    if target.startswith("/operator/") and "//" not in target:
        return redirect(target)
    return redirect("scans:operator")
