"""Errors the services raise; views turn them into 400/403/409 responses."""
from django.core.exceptions import PermissionDenied


class ServiceError(Exception):
    """A request that cannot be carried out in the current state; the message is for a person."""


class InvalidState(ServiceError):
    """The object's status does not allow this (e.g. editing a signed report)."""


class InvalidVerdict(ServiceError):
    """A radiologist's structured verdict that does not hold together (scans.services.reports.check_verdict).

    ``field`` names the value at fault (``verdict`` or ``verdict_label``) for a form or a 400.
    """

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


class StorageUnavailable(ServiceError):
    """The media storage refused a write (disk full, read-only, object store down); nothing
    of the request was recorded."""


__all__ = ["InvalidState", "InvalidVerdict", "PermissionDenied", "ServiceError", "StorageUnavailable"]
