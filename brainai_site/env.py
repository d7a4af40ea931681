"""Typed readers for environment variables that fail loudly.

Each helper returns a Python value or raises ``ImproperlyConfigured`` naming the variable
and what it received, so a bad setting stops start-up instead of causing a 500 an hour
later (the habit of healthchecks' ``hc/settings.py``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str, environ: Mapping[str, str] | None) -> str | None:
    env = os.environ if environ is None else environ
    value = env.get(name)
    return None if value is None else value.strip()


def env_str(name: str, default: str | None = None, *, environ=None, required: bool = False) -> str | None:
    value = _raw(name, environ)
    if value in (None, ""):
        if required:
            raise ImproperlyConfigured(f"{name} must be set (it is empty or missing)")
        return default
    return value


def env_bool(name: str, default: bool = False, *, environ=None) -> bool:
    value = _raw(name, environ)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false, yes/no, on/off); received {value!r}")


def env_int(name: str, default: int, *, environ=None, minimum: int | None = None) -> int:
    value = _raw(name, environ)
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number; received {value!r}") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}; received {number}")
    return number


def env_float(name: str, default: float, *, environ=None, minimum: float | None = None) -> float:
    value = _raw(name, environ)
    if value in (None, ""):
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number; received {value!r}") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}; received {number}")
    return number


def env_list(name: str, default: list[str], *, environ=None) -> list[str]:
    value = _raw(name, environ)
    if value is None:
        return list(default)
    items = [item.strip() for item in value.split(",") if item.strip()]
    if not items:
        raise ImproperlyConfigured(f"{name} must be a comma-separated list; received an empty value")
    return items


def env_path(name: str, default: Path | None, *, environ=None, must_exist: bool = False) -> Path | None:
    value = _raw(name, environ)
    if value in (None, ""):
        return default
    path = Path(value).expanduser()
    if must_exist and not path.exists():
        raise ImproperlyConfigured(f"{name} points at {value!r}, which does not exist")
    return path


def env_url(name: str, default: str, *, environ=None, schemes: tuple[str, ...]) -> str:
    value = _raw(name, environ) or default
    scheme = value.split("://", 1)[0].lower() if "://" in value else ""
    if scheme not in schemes:
        allowed = ", ".join(f"{s}://" for s in schemes)
        # Only the scheme is echoed: a URL may carry a password.
        raise ImproperlyConfigured(f"{name} must be a URL starting with {allowed}; received scheme {scheme!r}")
    return value
