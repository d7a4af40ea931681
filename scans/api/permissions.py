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
