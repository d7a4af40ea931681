"""Which classifier analyses a study: the names an upload may ask for, and the default.

The names come from ml.model.registry (models that ship weights, most accurate first). A study
stores the name it asked for; an empty name means the configured default
(``settings.BRAINAI_MODEL``, else the registry's default), resolved when the worker runs.
"""
from __future__ import annotations

from django.conf import settings

from ml.model import registry
from ml.errors import ModelNotFoundError
from scans.services.errors import ServiceError


class UnknownModel(ServiceError):
    """An upload asked for a model that is not available; the message lists those that are."""


def available_models() -> list[str]:
    """Model names an upload may request, most accurate first."""
    return registry.available_models()


def default_model() -> str | None:
    """The model an upload without a choice gets (None when no model ships at all)."""
    if settings.BRAINAI_MODEL:
        return settings.BRAINAI_MODEL
    try:
        return registry.default_model_name()
    except ModelNotFoundError:
        return None


def check_model_name(name: str | None) -> str:
    """The requested model name, stripped; "" for the default.

    Raises:
        UnknownModel: the name is not one of :func:`available_models`.
    """
    name = (name or "").strip()
    if not name:
        return ""
    names = available_models()
    if name not in names:
        raise UnknownModel(f"unknown model {name!r}; available models: {', '.join(names) or 'none'}")
    return name
