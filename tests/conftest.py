"""Shared fixtures: users in each role, API clients, and uploads.

Roles (scans.roles): ``staff`` uploads and views; ``radiologist`` also reviews and signs;
admins are ``is_staff``/superusers. Passwords are "pw-<username>".
"""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


def _user(django_user_model, username: str, *groups: str, **extra):
    user = django_user_model.objects.create_user(username=username, password=f"pw-{username}", **extra)
    for name in groups:
        user.groups.add(Group.objects.get_or_create(name=name)[0])
    return user


@pytest.fixture
def staff_user(django_user_model):
    return _user(django_user_model, "sam", "staff")


@pytest.fixture
def radiologist(django_user_model):
    return _user(django_user_model, "rita", "radiologist")


@pytest.fixture
def outsider(django_user_model):
    """Signed in, but in no BrainAI group."""
    return _user(django_user_model, "otto")


@pytest.fixture
def clinic_admin(django_user_model):
    return _user(django_user_model, "ada", is_staff=True, is_superuser=True)


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


@pytest.fixture
def staff_api(staff_user):
    return token_client(staff_user)


@pytest.fixture
def radiologist_api(radiologist):
    return token_client(radiologist)


@pytest.fixture
def ready_report(staff_user):
    """A report awaiting review (2 slices, AI finding glioma), reached through the services."""
    from tests import builders

    return builders.ready_report(staff_user)
