"""Shared fixtures: users in each role, API clients, and a report awaiting review.

Roles (scans.roles): ``staff`` uploads and views; ``radiologist`` also reviews and signs;
admins are ``is_staff``/superusers. Passwords are "pw-<username>". The code behind these
fixtures is plain, in tests/builders.py, for tests and benches that need it directly.
"""
from __future__ import annotations

import importlib

import pytest

from tests import builders as b

_AUDIT_MIGRATION = importlib.import_module("scans.migrations.0004_signed_snapshot_audit_append_only")


@pytest.fixture(scope="session", autouse=True)
def _test_flush_passes_the_audit_triggers():
    """A transactional test ends with a flush, which on SQLite is one DELETE per table; the
    append-only triggers refuse it. Only the test flush lifts them, for that DELETE.
    (PostgreSQL flushes with TRUNCATE, which row triggers do not see.)"""
    from django.db import connection

    if connection.vendor != "sqlite":
        yield
        return
    from django.db.backends.sqlite3.base import DatabaseOperations

    create, drop = _AUDIT_MIGRATION.TRIGGERS["sqlite"]
    original = DatabaseOperations.sql_flush

    def sql_flush(self, style, tables, **kwargs):
        sql = original(self, style, tables, **kwargs)
        return [*drop, *sql, *create] if _AUDIT_MIGRATION.TABLE in tables else sql

    DatabaseOperations.sql_flush = sql_flush
    yield
    DatabaseOperations.sql_flush = original


@pytest.fixture(autouse=True)
def _fresh_cache():
    """The API throttles count in the cache, per user id; ids repeat from test to test."""
    from django.core.cache import cache

    cache.clear()


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


@pytest.fixture
def sent(monkeypatch):
    """Capture what would be published (Celery's client, not our code, is replaced).

    A test that commits rows and drives the pipeline by hand (tests.builders) uses it too:
    the e2e tests' worker stays alive for the rest of the session, and would otherwise
    analyse the same study at the same time.
    """
    from brainai_site.celery import app

    calls = []
    monkeypatch.setattr(app, "send_task", lambda name, args=None, **kw: calls.append((name, tuple(args or ()))))
    return calls
