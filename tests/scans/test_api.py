"""REST API v1 as DESIGN.md describes it: shapes, filters, auth and roles."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from scans.models import AuditEvent
from tests import builders as b
from tests.builders import token_client

pytestmark = pytest.mark.django_db


def test_a_token_is_issued_for_username_and_password(staff_user):
    response = APIClient().post("/api/v1/auth/token/", {"username": "sam", "password": "pw-sam"})
    assert response.status_code == 200
    token = response.json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/reports/").status_code == 200


def test_a_wrong_password_gets_no_token(staff_user):
    assert APIClient().post("/api/v1/auth/token/", {"username": "sam", "password": "nope"}).status_code == 400


def test_anonymous_requests_are_refused():
    client = APIClient()
    for url in ("/api/v1/reports/", "/api/v1/studies/", "/api/v1/reports/1/", "/api/v1/schema/"):
        assert client.get(url).status_code == 401, url
    assert client.post("/api/v1/uploads/", {}).status_code == 401


def test_users_outside_the_clinic_groups_are_refused(outsider):
    assert token_client(outsider).get("/api/v1/reports/").status_code == 403


def test_session_auth_works_for_the_portal(staff_user):
    client = APIClient()
    client.force_login(staff_user)
    assert client.get("/api/v1/studies/").status_code == 200


def test_an_upload_answers_202_with_studies_and_rejections(staff_api):
    files = [b.upload("a.png", b.png_bytes(1)), b.upload("b.png", b.png_bytes(2)), b.upload("c.txt", b"x")]
    response = staff_api.post("/api/v1/uploads/", {"files": files, "patient_id": "API-1", "patient_name": "Ann",
                                                   "study_description": "Head"}, format="multipart")

    assert response.status_code == 202
    body = response.json()
    assert set(body) == {"id", "studies", "accepted", "rejected"}
    assert body["accepted"] == 2 and body["rejected"][0]["name"] == "c.txt" and body["rejected"][0]["reason"]
    assert body["studies"][0]["url"].endswith(f"/api/v1/studies/{body['studies'][0]['id']}/")
    again = staff_api.get(f"/api/v1/uploads/{body['id']}/").json()
    assert again == body


def test_an_upload_without_files_is_a_400(staff_api):
    assert staff_api.post("/api/v1/uploads/", {"patient_id": "X"}, format="multipart").status_code == 400


def test_an_upload_with_a_bad_date_is_a_400_naming_the_field(staff_api):
    response = staff_api.post("/api/v1/uploads/", {"files": [b.upload("a.png", b.png_bytes())], "patient_id": "X",
                                                   "patient_birth_date": "31/12/1970"}, format="multipart")
    assert response.status_code == 400 and "patient_birth_date" in response.json()


def test_a_study_shows_patient_status_scans_and_report(ready_report, staff_api):
    body = staff_api.get(f"/api/v1/studies/{ready_report.study_id}/").json()

    assert {"id", "patient", "status", "scans", "report"} <= set(body)
    assert body["patient"]["patient_id"] == "P-100"
    assert body["status"] == "awaiting_review" and body["progress"]["percent"] == 100
    assert body["report"]["id"] == ready_report.pk and body["report"]["url"].endswith(f"/reports/{ready_report.pk}/")
    assert len(body["scans"]) == 2 and body["scans"][0]["label"] == "glioma"


def test_a_report_has_the_documented_shape_and_its_view_is_audited(ready_report, staff_api, staff_user):
    body = staff_api.get(f"/api/v1/reports/{ready_report.pk}/").json()

    assert {"id", "study", "status", "finding", "scans", "explanation", "model", "review"} <= set(body)
    assert body["finding"]["label"] == "glioma" and set(body["finding"]) >= {"label", "confidence", "probabilities"}
    scan = body["scans"][0]
    assert {"id", "label", "probabilities", "in_distribution", "heatmap_url", "overlay_url"} <= set(scan)
    assert scan["heatmap_url"].startswith("http://testserver/media/")
    assert {"text", "provider", "model"} <= set(body["explanation"])
    assert body["model"] == {"name": "test-model", "version": "0123456789ab"}
    assert "not for diagnostic use" in body["notice"]
    event = AuditEvent.objects.get(action="view_report", report=ready_report)
    assert event.actor == staff_user and event.via == "api"


def test_reports_are_filtered_and_paginated(staff_user, staff_api):
    b.ready_report(staff_user, labels=("glioma",), patient_id="F-1", seed=10)
    b.ready_report(staff_user, labels=("notumor",), patient_id="F-2", seed=20)
    b.upload_study(staff_user, 1, patient_id="F-3", seed=30)

    def ids(query):
        response = staff_api.get(f"/api/v1/reports/{query}")
        assert response.status_code == 200, response.content
        return [r["study"]["patient"]["patient_id"] for r in response.json()["results"]]

    assert sorted(ids("")) == ["F-1", "F-2", "F-3"]
    assert ids("?label=glioma") == ["F-1"]
    assert ids("?status=processing") == ["F-3"]
    assert ids("?patient_id=F-2") == ["F-2"]
    assert ids("?since=2000-01-01") and ids("?since=2999-01-01") == []
    assert staff_api.get("/api/v1/reports/?since=yesterday").status_code == 400
    assert staff_api.get("/api/v1/reports/?label=banana").status_code == 400
    page = staff_api.get("/api/v1/reports/?page_size=2").json()
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"]


def test_only_radiologists_sign(ready_report, staff_api, radiologist_api):
    assert staff_api.post(f"/api/v1/reports/{ready_report.pk}/sign/").status_code == 403

    response = radiologist_api.post(f"/api/v1/reports/{ready_report.pk}/sign/",
                                    {"findings": "Mass.", "impression": "Glioma likely."}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "signed" and body["review"]["signed_by"] == "rita"
    assert body["review"]["impression"] == "Glioma likely."
    assert radiologist_api.post(f"/api/v1/reports/{ready_report.pk}/sign/").status_code == 409


def test_a_signed_report_is_amended_into_a_new_version(ready_report, radiologist_api):
    radiologist_api.post(f"/api/v1/reports/{ready_report.pk}/sign/")
    response = radiologist_api.post(f"/api/v1/reports/{ready_report.pk}/amend/",
                                    {"findings": "Revised", "impression": "Revised"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["version"] == 2 and body["status"] == "amended" and body["review"]["previous_version"] == ready_report.pk


def test_the_explanation_can_be_regenerated(ready_report, staff_api):
    response = staff_api.post(f"/api/v1/reports/{ready_report.pk}/explanation/")
    assert response.status_code == 202 and response.json()["explanation"]["pending"] is True


def test_unknown_ids_are_404(staff_api):
    assert staff_api.get("/api/v1/reports/999999/").status_code == 404
    assert staff_api.get("/api/v1/studies/999999/").status_code == 404


def test_the_openapi_schema_and_docs_are_served_to_signed_in_users(staff_user, staff_api):
    schema = staff_api.get("/api/v1/schema/?format=json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in ("/api/v1/uploads/", "/api/v1/reports/", "/api/v1/reports/{id}/", "/api/v1/reports/{id}/sign/",
                 "/api/v1/reports/{id}/explanation/", "/api/v1/studies/{id}/", "/api/v1/auth/token/"):
        assert path in paths, path
    client = APIClient()
    client.force_login(staff_user)
    docs = client.get("/api/v1/docs/")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()
