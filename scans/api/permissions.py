from rest_framework.permissions import BasePermission

from scans import permissions, roles


class IsClinicUser(BasePermission):
    """Staff, radiologists and admins; everyone else gets 401/403."""

    message = "You need to be in the staff or radiologist group."

    def has_permission(self, request, view):
        return roles.is_clinic_user(request.user)


class IsRadiologist(BasePermission):
    """The review rule (scans.permissions.REVIEW): edit, sign and amend reports."""

    message = "Only radiologists may do this."

    def has_permission(self, request, view):
        return permissions.REVIEW(request.user)


class MayChangePriority(BasePermission):
    """The priority rule (scans.permissions.PRIORITY): radiologists, operators and admins."""

    message = "Only radiologists, operators and admins may change a study's priority."

    def has_permission(self, request, view):
        return permissions.PRIORITY(request.user)


class IsOperator(BasePermission):
    """The operator rule (scans.permissions.OPERATE): operators and admins."""

    message = "Only operators and admins may do this."

    def has_permission(self, request, view):
        return permissions.OPERATE(request.user)


class CanViewAnalytics(BasePermission):
    """The reviewer analytics (scans.permissions.ANALYTICS): radiologists and admins."""

    message = "Only radiologists and admins may view the reviewer analytics."

    def has_permission(self, request, view):
        return permissions.ANALYTICS(request.user)
