"""Limits at the door: request size, file count, API throttles, login lockout, who reads the
schema, and the not-for-diagnostic-use header on every API answer."""
from __future__ import annotations

import io

import pytest
from django.test import Client, RequestFactory
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from brainai_site.middleware import RequestTooLarge
from scans.api.serializers import NOTICE
from scans.models import Study
from tests import builders as b

pytestmark = pytest.mark.django_db


class _Unread(io.RawIOBase):
    """A request body that fails the test if anyone reads it."""

    def readable(self):
        return True

    def readinto(self, buffer):
        raise AssertionError("the body was read")


def test_an_oversize_request_is_refused_before_its_body_is_read(settings):
    settings.BRAINAI_REQUEST_MAX_MB = 1
    request = RequestFactory().generic("POST", "/api/v1/uploads/", content_type="multipart/form-data; boundary=x")
    request.META["CONTENT_LENGTH"] = str(1024 * 1024 + 1)
    request.META["wsgi.input"] = _Unread()
    request._stream = _Unread()

    response = RequestTooLarge(lambda r: pytest.fail("the view ran"))(request)

    assert response.status_code == 413 and b"1 MB" in response.content


def _uploader(user, via: str):
    """The API client (token) or the upload page's browser session: both post to /api/v1/uploads/."""
    if via == "token":
        return b.token_client(user)
    client = APIClient()
    client.force_login(user)
    return client


@pytest.mark.parametrize("via", ["token", "session"])
def test_an_oversize_upload_is_a_413_not_a_202(staff_user, settings, via):
    settings.BRAINAI_REQUEST_MAX_MB = 1
    big = b.upload("big.png", b"\x89PNG" + b"\0" * (1024 * 1024 + 10))

    response = _uploader(staff_user, via).post("/api/v1/uploads/", {"files": [big], "patient_id": "P-BIG"},
                                               format="multipart")

    assert response.status_code == 413 and response["X-BrainAI-Notice"] == NOTICE
    assert not Study.objects.exists()


def test_a_request_under_the_limit_passes(staff_api, settings):
    settings.BRAINAI_REQUEST_MAX_MB = 1
    response = staff_api.post("/api/v1/uploads/", {"files": [b.upload("a.png", b.png_bytes())], "patient_id": "P-S"},
                              format="multipart")
    assert response.status_code == 202


@pytest.mark.parametrize("via", ["token", "session"])
def test_more_files_than_the_limit_is_a_400_and_stores_nothing(staff_user, settings, via):
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 3
    files = [b.upload(f"s{i}.png", b.png_bytes(seed=i)) for i in range(4)]
    response = _uploader(staff_user, via).post("/api/v1/uploads/", {"files": files, "patient_id": "P-N"},
                                               format="multipart")
    assert response.status_code == 400
    assert not Study.objects.exists()
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 4
    assert _uploader(staff_user, via).post("/api/v1/uploads/", {"files": files, "patient_id": "P-N"},
                                           format="multipart").status_code == 202


def test_the_api_throttles_a_user_and_anonymous_callers(staff_api, monkeypatch):
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"user": "3/min", "anon": "2/min"})
    assert [staff_api.get("/api/v1/studies/").status_code for _ in range(4)] == [200, 200, 200, 429]
    anonymous = APIClient()  # refused at 401 before any throttle; the token endpoint is where they knock
    body = {"username": "nobody", "password": "x"}
    assert [anonymous.post("/api/v1/auth/token/", body).status_code for _ in range(3)] == [400, 400, 429]


def _bad_login(client, username):
    return client.post("/accounts/login/", {"username": username, "password": "wrong"}, REMOTE_ADDR="10.2.0.1")


def test_the_login_page_locks_after_repeated_failures(staff_user, settings):
    client = Client()
    codes = [_bad_login(client, "sam").status_code for _ in range(settings.AXES_FAILURE_LIMIT)]
    assert codes[:-1] == [200] * (settings.AXES_FAILURE_LIMIT - 1) and codes[-1] == 429
    right = client.post("/accounts/login/", {"username": "sam", "password": "pw-sam"}, REMOTE_ADDR="10.2.0.1")
    assert right.status_code == 429  # locked even with the right password
    other = client.post("/accounts/login/", {"username": "sam", "password": "pw-sam"}, REMOTE_ADDR="10.2.0.2")
    assert other.status_code == 302  # another address is not locked out


def test_the_token_endpoint_locks_after_repeated_failures(staff_user, settings):
    client = APIClient()
    body = {"username": "sam", "password": "wrong"}
    codes = [client.post("/api/v1/auth/token/", body, REMOTE_ADDR="10.3.0.1").status_code
             for _ in range(settings.AXES_FAILURE_LIMIT + 1)]
    assert codes[0] == 400 and codes[-1] == 429
    right = client.post("/api/v1/auth/token/", {"username": "sam", "password": "pw-sam"}, REMOTE_ADDR="10.3.0.1")
    assert right.status_code == 429 and "token" not in right.json()
    assert client.post("/api/v1/auth/token/", {"username": "sam", "password": "pw-sam"},
                       REMOTE_ADDR="10.3.0.2").json()["token"]


@pytest.mark.parametrize("path", ["/api/v1/schema/", "/api/v1/docs/"])
def test_the_schema_and_docs_need_a_clinic_role(path, outsider, staff_user):
    assert APIClient().get(path).status_code in (401, 403)
    assert b.token_client(outsider).get(path).status_code == 403
    assert b.token_client(staff_user).get(path).status_code == 200


@pytest.mark.parametrize("path, who, expected", [
    ("/api/v1/studies/", "staff", 200), ("/api/v1/studies/", None, 401), ("/api/v1/studies/999/", "staff", 404),
    ("/api/v1/schema/", "staff", 200), ("/api/v1/auth/token/", None, 405),
])
def test_every_api_answer_carries_the_notice_header(path, who, expected, staff_user):
    client = b.token_client(staff_user) if who else APIClient()
    response = client.get(path)
    assert response.status_code == expected and response["X-BrainAI-Notice"] == NOTICE


def test_portal_pages_do_not_carry_the_api_header(staff_user):
    client = Client()
    client.force_login(staff_user)
    assert "X-BrainAI-Notice" not in client.get("/")
