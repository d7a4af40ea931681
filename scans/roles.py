"""Which role a user has. Groups: ``staff`` (upload, view), ``radiologist`` (also review, sign).

Operators (group ``operator``) watch the queues. Admins (``is_staff``/superuser) use the Django admin and may do what staff do. The rules
built on these roles, one per action, are in scans.permissions.
"""
from __future__ import annotations

STAFF = "staff"
RADIOLOGIST = "radiologist"
GROUPS = (STAFF, RADIOLOGIST)
# Watches the queues and restarts what is stuck (issue #20): the operator's view shows
# ids, stages and counts, no patient data, so an operator is not a clinic user.
OPERATOR = "operator"


def _groups(user) -> set[str]:
    cached = getattr(user, "_brainai_groups", None)
    if cached is None:
        cached = set(user.groups.values_list("name", flat=True)) if user.is_authenticated else set()
        user._brainai_groups = cached
    return cached


def is_clinic_user(user) -> bool:
    """May upload and view studies, reports and images."""
    if not (user and user.is_authenticated and user.is_active):
        return False
    return user.is_superuser or user.is_staff or bool(_groups(user) & set(GROUPS))


def is_radiologist(user) -> bool:
    """May edit the review, sign and amend reports."""
    if not (user and user.is_authenticated and user.is_active):
        return False
    return user.is_superuser or RADIOLOGIST in _groups(user)


def is_admin(user) -> bool:
    """May use the Django admin (staff flag or superuser)."""
    return bool(user and user.is_authenticated and user.is_active and (user.is_staff or user.is_superuser))


def is_operator(user) -> bool:
    """May use the operator's queue view and its actions (retry, cancel, priority)."""
    if not (user and user.is_authenticated and user.is_active):
        return False
    return user.is_superuser or user.is_staff or OPERATOR in _groups(user)
