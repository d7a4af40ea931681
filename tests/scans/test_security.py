"""Login everywhere, media only for signed-in clinic users, health open, CSRF on."""
from __future__ import annotations

import pytest
from django.test import Client

from tests import builders as b

pytestmark = pytest.mark.django_db


def test_pages_redirect_anonymous_users_to_the_login(client):
    for url in ("/", "/admin/"):
        response = client.get(url)
        assert response.status_code == 302 and "login" in response["Location"], url


def test_the_login_page_is_open(client):
    assert client.get("/accounts/login/").status_code == 200


def test_media_needs_a_signed_in_clinic_user(ready_report, staff_user, outsider):
    url = ready_report.study.scans.first().analysis.overlay.url
    assert url.startswith("/media/")

    anonymous = Client().get(url)
    assert anonymous.status_code == 302 and "login" in anonymous["Location"]
    stranger = Client()
    stranger.force_login(outsider)
    assert stranger.get(url).status_code == 403
    member = Client()
    member.force_login(staff_user)
    response = member.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert "private" in response["Cache-Control"]
    assert b"".join(response.streaming_content)[:4] == b"\x89PNG"


def test_media_accepts_an_api_token(ready_report, staff_user):
    from tests.builders import token_client

    url = ready_report.study.scans.first().analysis.heatmap.url
    assert token_client(staff_user).get(url).status_code == 200
    bad = Client(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert bad.get(url).status_code == 401


def test_media_paths_cannot_escape_the_media_folder(staff_user):
    member = Client()
    member.force_login(staff_user)
    for url in ("/media/../brainai_site/settings.py", "/media/previews/../../secret_key", "/media/nope.png"):
        assert member.get(url).status_code == 404, url


def test_healthz_is_open_and_reports_each_part(client):
    response = client.get("/healthz")
    body = response.json()
    assert set(body) >= {"status", "database", "broker", "model"}
    assert body["database"]["ok"] is True
    # No test broker runs here: the health check says so instead of failing.
    assert response.status_code == (200 if body["broker"]["ok"] and body["model"]["ok"] else 503)


def test_csrf_is_enforced_for_session_posts(staff_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    response = client.post("/api/v1/uploads/", {"files": [b.upload("a.png", b.png_bytes())], "patient_id": "X"})
    assert response.status_code == 403 and b"CSRF" in response.content


@pytest.mark.parametrize("kind", ["staff group", "admin without a role"])
def test_neither_staff_nor_a_plain_admin_can_sign_by_any_path(kind, ready_report, django_user_model):
    """Only radiologists (and superusers) sign; an ``is_staff`` admin is not a radiologist."""
    from django.urls import reverse

    from scans.models import ReportStatus

    user = (b.make_user(django_user_model, "signer", "staff") if kind == "staff group"
            else b.make_user(django_user_model, "signer", is_staff=True))
    text = {"findings": "x", "impression": "y"}
    assert b.token_client(user).post(f"/api/v1/reports/{ready_report.pk}/sign/", text,
                                     format="json").status_code == 403
    portal = Client()
    portal.force_login(user)
    assert portal.post(reverse("scans:report-sign", args=[ready_report.pk]), text).status_code == 403
    ready_report.refresh_from_db()
    assert ready_report.status == ReportStatus.AWAITING_REVIEW and ready_report.signed_by is None
