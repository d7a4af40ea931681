"""Small helpers every portal view shares: who may see a page, fetching rows or 404,
calling a service verb, the client address for the audit log (the API uses it too)."""
from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.http import Http404
from django.shortcuts import redirect

from scans import roles
from scans.services import ServiceError


def clinic_user_required(view):
    """Signed in (else the login page) and in a BrainAI role: staff, radiologist or admin (else 403).

    An operator who is not a clinic user lands on the operator's view instead (GET only):
    their role sees queues, never patient data.
    """
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not roles.is_clinic_user(request.user):
            if request.method == "GET" and roles.is_operator(request.user):
                return redirect("scans:operator")
            raise PermissionDenied("your account has no BrainAI role; ask an administrator")
        return view(request, *args, **kwargs)
    return login_required(wrapper)


def get_or_404(selector, pk, what: str):
    """Call a ``selectors.*_detail`` function; its DoesNotExist becomes a 404."""
    try:
        return selector(pk)
    except ObjectDoesNotExist:
        raise Http404(f"No {what} {pk}") from None


def call_service(request, verb, *args, success: str = "", **kwargs):
    """Run a ``scans.services`` verb; a ServiceError becomes a message and None.

    PermissionDenied is not caught: Django answers 403.
    """
    try:
        result = verb(*args, **kwargs)
    except ServiceError as exc:
        messages.error(request, str(exc))
        return None
    if success:
        messages.success(request, success)
    return result


def client_ip(request) -> str | None:
    """The address the audit log records for a portal or API request: REMOTE_ADDR, or None.

    X-Forwarded-For is not read: a client can write any address into it.
    """
    return request.META.get("REMOTE_ADDR") or None
