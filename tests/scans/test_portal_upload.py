"""The upload page, and the request its script sends: multipart to the API with session + CSRF."""
import re

from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import reverse

from scans.models import Study
from tests import builders as b


def test_the_upload_page_offers_files_folders_and_the_patient_fields(staff_client):
    html = staff_client.get(reverse("scans:upload")).content.decode()
    assert 'id="dropzone"' in html and "webkitdirectory" in html and "multiple" in html
    assert 'data-endpoint="/api/v1/uploads/"' in html
    assert 'data-study-url="/studies/__id__/"' in html
    for name in ("patient_id", "patient_name", "study_description"):
        assert f'name="{name}"' in html
    assert 'name="csrfmiddlewaretoken"' in html and "<progress" in html
    assert "/static/js/upload.js" in html


def test_the_upload_script_walks_folders_and_reports_progress():
    script = open(finders.find("js/upload.js")).read()
    for piece in ("webkitGetAsEntry", "readEntries", "upload.onprogress", "X-CSRFToken", 'fd.append("files"',
                  "rejected"):
        assert piece in script


def _signed_in_browser(user) -> tuple[Client, str]:
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    browser.get(reverse("scans:upload"))  # the page sets the csrftoken cookie the script sends back
    return browser, browser.cookies["csrftoken"].value


def test_the_api_accepts_what_the_page_sends(staff_user):
    browser, token = _signed_in_browser(staff_user)
    files = [b.upload(f"slice{i}.jpg", data) for i, data in enumerate(b.brain_jpegs(2))]
    files.append(b.upload("notes.txt", b"hello"))
    response = browser.post("/api/v1/uploads/", {"files": files, "patient_id": "BRN-9", "patient_name": "Test Person",
                                                 "study_description": "MRI brain"},
                            HTTP_X_CSRFTOKEN=token, HTTP_ACCEPT="application/json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["accepted"] == 2
    assert [r["name"] for r in body["rejected"]] == ["notes.txt"] and body["rejected"][0]["reason"]
    study = Study.objects.get(pk=body["studies"][0]["id"])
    assert study.patient.patient_id == "BRN-9"
    assert browser.get(f"/studies/{study.pk}/").status_code == 200


def test_the_api_refuses_a_session_upload_without_the_csrf_header(staff_user):
    browser, _ = _signed_in_browser(staff_user)
    files = [b.upload("a.jpg", b.jpeg_bytes())]
    response = browser.post("/api/v1/uploads/", {"files": files, "patient_id": "BRN-9"})
    assert response.status_code == 403
    assert not Study.objects.exists()


def test_the_page_links_the_api_url_from_the_contract(staff_client):
    html = staff_client.get(reverse("scans:upload")).content.decode()
    assert re.search(r'action="/api/v1/uploads/"', html)
