"""The portal's security headers, and secure cookies when the site runs behind TLS."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def portal(staff_user):
    client = Client()
    client.force_login(staff_user)
    return client


@pytest.mark.parametrize("path", ["/", "/upload/", "/accounts/login/", "/admin/login/"])
def test_pages_send_csp_frame_referrer_and_nosniff_headers(portal, path):
    response = portal.get(path)
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_report_pages_have_no_inline_script_the_policy_would_block(portal, ready_report):
    for path in (f"/reports/{ready_report.pk}/", f"/reports/{ready_report.pk}/print/"):
        page = portal.get(path).content.decode()
        assert "onclick=" not in page and "<script>" not in page, path


def _settings_with(**env) -> dict:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("BRAINAI_", "DJANGO_"))}
    environ.update(DJANGO_SETTINGS_MODULE="brainai_site.settings", BRAINAI_VAR_DIR=str(ROOT / "var"), **env)
    code = ("import json, django; django.setup(); from django.conf import settings as s; print(json.dumps("
            "[s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, getattr(s, 'SECURE_PROXY_SSL_HEADER', None), "
            "s.SECURE_SSL_REDIRECT]))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environ, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_behind_tls_the_cookies_are_secure_and_the_proxy_header_is_trusted():
    secure, csrf_secure, proxy, redirect = _settings_with(DJANGO_SECURE_COOKIES="1", DJANGO_BEHIND_TLS_PROXY="1",
                                                          DJANGO_SSL_REDIRECT="1")
    assert secure and csrf_secure and redirect
    assert proxy == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert _settings_with()[:2] == [False, False]  # plain HTTP on loopback (`make run`)


def test_secure_cookies_are_set_with_the_secure_flag(staff_user, settings):
    settings.SESSION_COOKIE_SECURE = True
    client = Client()
    response = client.post("/accounts/login/", {"username": "sam", "password": "pw-sam"}, secure=True)
    assert response.status_code == 302 and response.cookies["sessionid"]["secure"]
