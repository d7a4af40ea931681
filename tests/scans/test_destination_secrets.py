"""STOW-RS destination secrets: the admin never shows a stored password or token back (a
blank input keeps it), they never reach a log or a failure reason, and ``env:NAME`` reads
the secret from the worker's environment at send time, so it need not sit in the database.

Sends go to a real loopback HTTP receiver that records the Authorization header it got.
"""
from __future__ import annotations

import base64
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from scans import services
from scans.models import DeliveryStatus, Destination, DestinationKind
from tests import builders as b

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sent")]

TOKEN_VAR = "BRAINAI_TEST_STOW_TOKEN"
PASSWORD_VAR = "BRAINAI_TEST_STOW_PASSWORD"


class Receiver:
    """A STOW-RS endpoint on loopback: answers 200 with an empty DICOM JSON dataset and keeps
    each request's Authorization header."""

    def __init__(self):
        seen = self.authorizations = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                seen.append(self.headers.get("Authorization"))
                body = json.dumps({}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/dicom+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/dicom-web/studies"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


def _send_to(destination, staff_user):
    """A report reaching awaiting_review queues a delivery to ``destination``; send it once."""
    report = b.ready_report(staff_user)
    delivery = report.deliveries.get(destination=destination)
    return services.send_delivery(delivery.pk)


def test_an_env_token_is_read_at_send_time_and_never_stored(receiver, staff_user, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(TOKEN_VAR, "tok-from-env-81723")
    pacs = Destination.objects.create(name="stow", kind=DestinationKind.STOW, url=receiver.url,
                                      token=f"env:{TOKEN_VAR}")
    delivery = _send_to(pacs, staff_user)
    assert delivery.status == DeliveryStatus.SENT
    assert receiver.authorizations == ["Bearer tok-from-env-81723"]
    assert Destination.objects.get(pk=pacs.pk).token == f"env:{TOKEN_VAR}"  # the name, not the secret
    assert "tok-from-env-81723" not in caplog.text


def test_an_env_password_goes_out_as_basic_auth(receiver, staff_user, monkeypatch):
    monkeypatch.setenv(PASSWORD_VAR, "pw-from-env-5521")
    pacs = Destination.objects.create(name="stow", kind=DestinationKind.STOW, url=receiver.url,
                                      username="brainai", password=f"env:{PASSWORD_VAR}")
    assert _send_to(pacs, staff_user).status == DeliveryStatus.SENT
    assert receiver.authorizations == ["Basic " + base64.b64encode(b"brainai:pw-from-env-5521").decode()]


def test_a_stored_password_still_works_and_is_never_logged(receiver, staff_user, caplog):
    caplog.set_level(logging.DEBUG)
    pacs = Destination.objects.create(name="stow", kind=DestinationKind.STOW, url=receiver.url,
                                      username="brainai", password="stored-pw-33109")
    assert _send_to(pacs, staff_user).status == DeliveryStatus.SENT
    assert receiver.authorizations == ["Basic " + base64.b64encode(b"brainai:stored-pw-33109").decode()]
    assert "stored-pw-33109" not in caplog.text


def test_a_missing_variable_fails_the_attempt_naming_it(receiver, staff_user, monkeypatch, caplog):
    monkeypatch.delenv(TOKEN_VAR, raising=False)
    pacs = Destination.objects.create(name="stow", kind=DestinationKind.STOW, url=receiver.url,
                                      token=f"env:{TOKEN_VAR}")
    delivery = _send_to(pacs, staff_user)
    assert delivery.status == DeliveryStatus.PENDING and delivery.attempts == 1  # tried again later
    assert TOKEN_VAR in delivery.reason and "not set" in delivery.reason
    assert receiver.authorizations == []  # nothing went out without its credentials


def test_credentials_in_the_url_stay_out_of_the_reason(staff_user):
    from tests.broker import free_port

    pacs = Destination.objects.create(name="stow", kind=DestinationKind.STOW,
                                      url=f"http://user:url-pw-4417@127.0.0.1:{free_port()}/dicom-web/studies")
    delivery = _send_to(pacs, staff_user)  # nobody listens there: a connection error
    assert delivery.status == DeliveryStatus.PENDING and "127.0.0.1" in delivery.reason
    assert "url-pw-4417" not in delivery.reason


def test_a_malformed_env_reference_is_refused():
    pacs = Destination(name="stow", kind=DestinationKind.STOW, url="https://pacs.example/dicom-web/studies",
                       token="env:not a name")
    with pytest.raises(ValidationError) as caught:
        pacs.full_clean()
    assert "token" in caught.value.message_dict


# --- the admin form -----------------------------------------------------------------------


@pytest.fixture
def admin_client_(clinic_admin):
    client = Client()
    client.force_login(clinic_admin)
    return client


@pytest.fixture
def stow():
    return Destination.objects.create(name="stow", kind=DestinationKind.STOW, url="https://pacs.example/studies",
                                      username="brainai", password="stored-pw-99120", token="stored-tok-77310")


def _form(destination, **changes):
    data = {"name": destination.name, "kind": destination.kind, "enabled": "on", "ae_title": "", "host": "",
            "port": "", "url": destination.url, "username": destination.username, "password": "", "token": "",
            "send_preliminary": "on", "send_signed": "on", "send_overlays": "on"}
    data.update(changes)
    return data


def test_the_change_page_never_shows_a_stored_secret(admin_client_, stow):
    page = admin_client_.get(reverse("admin:scans_destination_change", args=[stow.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "stored-pw-99120" not in html and "stored-tok-77310" not in html
    assert 'type="password" name="password"' in html and "A value is stored." in html


def test_a_blank_secret_keeps_the_stored_one_and_a_new_one_replaces_it(admin_client_, stow):
    url = reverse("admin:scans_destination_change", args=[stow.pk])
    response = admin_client_.post(url, _form(stow))
    assert response.status_code == 302, response.content.decode()[-2000:]
    stow.refresh_from_db()
    assert (stow.password, stow.token) == ("stored-pw-99120", "stored-tok-77310")

    assert admin_client_.post(url, _form(stow, token=f"env:{TOKEN_VAR}")).status_code == 302
    stow.refresh_from_db()
    assert (stow.password, stow.token) == ("stored-pw-99120", f"env:{TOKEN_VAR}")
    assert TOKEN_VAR in admin_client_.get(url).content.decode()  # the variable's name is no secret

    assert admin_client_.post(url, _form(stow, clear_password="on")).status_code == 302
    stow.refresh_from_db()
    assert (stow.password, stow.token) == ("", f"env:{TOKEN_VAR}")


def test_a_malformed_env_reference_is_an_error_on_the_form(admin_client_, stow):
    response = admin_client_.post(reverse("admin:scans_destination_change", args=[stow.pk]),
                                  _form(stow, token="env:no way"))
    assert response.status_code == 200 and "Write env:NAME" in response.content.decode()
    stow.refresh_from_db()
    assert stow.token == "stored-tok-77310"


def test_error_reports_hide_the_posted_secrets(admin_client_, stow):
    response = admin_client_.post(reverse("admin:scans_destination_change", args=[stow.pk]), _form(stow))
    assert set(response.wsgi_request.sensitive_post_parameters) == {"password", "token"}
