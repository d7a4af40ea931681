"""Every URL the site routes, crawled without credentials and as a user with no role:
401, 403 or a login redirect everywhere, except the few pages meant to be open.

The list is read from the URL resolver, so a new view is crawled without anyone adding it.
"""
from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import URLResolver, get_resolver

pytestmark = pytest.mark.django_db

# Open on purpose: signing in, resetting a password, the health check, the token endpoint.
OPEN = {"login", "logout", "password_reset", "password_reset_done", "password_reset_confirm",
        "password_reset_complete", "healthz", "api:token", "admin:login", "admin:logout"}
# The crawler calls from outside (a TEST-NET address), not from loopback: the Prometheus
# metrics answer their address allow-list (loopback by default) or a bearer token, and an
# outsider has neither. tests/scans/test_metrics.py checks the allow-list itself.
OUTSIDE = {"REMOTE_ADDR": "203.0.113.7"}
# A signed-in user without a role may still change their own password.
OWN_ACCOUNT = {"password_change", "password_change_done"}


def _routes(patterns=None, namespace=None, prefix=""):
    """(name, route) for every URL pattern, namespaces joined (``api:report-sign``)."""
    for p in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(p, URLResolver):
            ns = f"{namespace}:{p.namespace}" if namespace and p.namespace else (p.namespace or namespace)
            yield from _routes(p.url_patterns, ns, prefix + str(p.pattern))
        else:
            yield (f"{namespace}:{p.name}" if namespace else p.name), prefix + str(p.pattern)


def _concrete(route: str, values: dict) -> str | None:
    """A path for ``route``, each parameter filled from ``values`` by its name."""
    if "drf_format_suffix" in route:
        return None  # the router's ".json" variants of the api root: the same view as api:api-root
    path = route.replace("^", "").replace("$", "").replace("\\.", ".").replace("/?", "/")
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: str(values.get(m.group(1), "1")), path)
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values.get(m.group(1), "1")), path)
    return "/" + path


@pytest.fixture
def urls(ready_report, radiologist):
    from scans import services

    services.sign_report(ready_report, radiologist)
    scan = ready_report.study.scans.first()
    values = {"pk": ready_report.pk, "object_id": ready_report.study_id, "id": radiologist.pk,
              "path": scan.image.name, "format": "json", "app_label": "scans", "url": "scans/",
              "uidb64": "MQ", "token": "set-password", "content_type_id": 1}
    found = []
    for name, route in _routes():
        path = _concrete(route, values)
        if path is not None and name not in OPEN:
            found.append((name, path))
    print(f"crawling {len(found)} URLs")
    assert len(found) > 60  # the portal, the API, media and the admin's pages
    return found


def _refused(response) -> bool:
    if response.status_code in (401, 403):
        return True
    return response.status_code == 302 and "login" in response.get("Location", "")


@pytest.mark.parametrize("method", ["get", "post"])
def test_no_url_answers_an_anonymous_caller(urls, method):
    client = Client(**OUTSIDE)
    leaks = [(name, path, r.status_code) for name, path in urls
             if not _refused(r := getattr(client, method)(path))]
    assert leaks == []


@pytest.mark.parametrize("method", ["get", "post"])
def test_no_url_answers_a_user_without_a_role(urls, outsider, method):
    client = Client(**OUTSIDE)
    client.force_login(outsider)
    leaks = [(name, path, r.status_code) for name, path in urls
             if name not in OWN_ACCOUNT and not _refused(r := getattr(client, method)(path))]
    assert leaks == []


def test_a_token_without_a_role_reads_nothing(urls, outsider):
    from tests import builders as b

    client = b.token_client(outsider)
    api = [(name, path) for name, path in urls if name.startswith("api:") or name == "media"]
    assert len(api) > 15
    leaks = [(name, path, r.status_code) for name, path in api if not _refused(r := client.get(path))]
    assert leaks == []
