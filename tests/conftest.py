"""Shared fixtures: users in each role, API clients, and a report awaiting review.

Roles (scans.roles): ``staff`` uploads and views; ``radiologist`` also reviews and signs;
admins are ``is_staff``/superusers. Passwords are "pw-<username>". The code behind these
fixtures is plain, in tests/builders.py, for tests and benches that need it directly.
"""
from __future__ import annotations

import pytest

from tests import builders as b


@pytest.fixture
def staff_user(django_user_model):
    return b.make_user(django_user_model, "sam", "staff")


@pytest.fixture
def radiologist(django_user_model):
    return b.make_user(django_user_model, "rita", "radiologist")


@pytest.fixture
def outsider(django_user_model):
    """Signed in, but in no BrainAI group."""
    return b.make_user(django_user_model, "otto")


@pytest.fixture
def clinic_admin(django_user_model):
    return b.make_user(django_user_model, "ada", is_staff=True, is_superuser=True)


@pytest.fixture
def staff_api(staff_user):
    return b.token_client(staff_user)


@pytest.fixture
def radiologist_api(radiologist):
    return b.token_client(radiologist)


@pytest.fixture
def ready_report(staff_user):
    """A report awaiting review (2 slices, AI finding glioma), reached through the services."""
    return b.ready_report(staff_user)
