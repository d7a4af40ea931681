"""Who may do what: one rule per action.

The services raise from a rule (``REVIEW.require(user, "sign a report")``); the portal,
the templates and the API ask the same rule whether to offer the action. A rule is about
the person (scans.roles); whether the row allows it is on the model (``Report.is_editable``,
``is_amendable``, ``is_explainable``); the ``can_*`` helpers join the two for the pages.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from django.core.exceptions import PermissionDenied

from scans import roles


@dataclass(frozen=True)
class Rule:
    """One permission: who has it (named in the refusal) and the test on a user."""

    who: str  # "only {who} may {what}"
    allows: Callable[[object], bool]

    def __call__(self, user) -> bool:
        return bool(self.allows(user))

    def require(self, user, what: str) -> None:
        """Raises PermissionDenied("only {who} may {what}") unless ``user`` passes."""
        if not self(user):
            raise PermissionDenied(f"only {self.who} may {what}")


REVIEW = Rule("radiologists", roles.is_radiologist)  # edit the review, sign, amend
EXPLAIN = Rule("clinic users", roles.is_clinic_user)  # ask for a new explanation
RERUN = Rule("admins and radiologists", lambda user: roles.is_admin(user) or roles.is_radiologist(user))
MARK_FAILED = Rule("admins", roles.is_admin)  # give up on a scan or a study
# The reviewer analytics (agreement, confusion, calibration per model) and the corrections export.
ANALYTICS = Rule("radiologists and admins", lambda user: roles.is_radiologist(user) or roles.is_admin(user))
# The operator's queue view and its actions (retry, cancel, priority): ids and counts, no PHI.
OPERATE = Rule("operators and admins", roles.is_operator)
# Move a study to another gpu lane (scans.services.priority.set_priority); an operator's
# is_operator covers admins too.
PRIORITY = Rule("radiologists, operators and admins",
                lambda user: roles.is_radiologist(user) or roles.is_operator(user))


def can_edit(user, report) -> bool:
    """Edit the review and sign: a radiologist, on a report awaiting review."""
    return REVIEW(user) and report.is_editable


def can_amend(user, report) -> bool:
    return REVIEW(user) and report.is_amendable


def can_regenerate(user, report) -> bool:
    return EXPLAIN(user) and report.is_explainable
