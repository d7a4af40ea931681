"""Errors the services raise; views turn them into 400/403/409 responses."""
from django.core.exceptions import PermissionDenied


class ServiceError(Exception):
    """A request that cannot be carried out in the current state; the message is for a person."""


class InvalidState(ServiceError):
    """The object's status does not allow this (e.g. editing a signed report)."""


class StorageUnavailable(ServiceError):
    """The media storage refused a write (disk full, read-only, object store down); nothing
    of the request was recorded."""


__all__ = ["InvalidState", "PermissionDenied", "ServiceError", "StorageUnavailable"]
