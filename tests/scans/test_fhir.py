"""GET /api/v1/reports/{id}/fhir/: a FHIR R4 DiagnosticReport that fhir.resources accepts,
whose status follows the report, read from the snapshot once signed, audited as a read."""
from __future__ import annotations

import pytest
from fhir.resources.R4B.diagnosticreport import DiagnosticReport

from scans import services
from scans.models import Analysis, AuditAction, AuditEvent
from tests.builders import analyse_study, dicom_bytes, explain_and_finalize, token_client, upload

pytestmark = pytest.mark.django_db

STUDY_UID = "1.2.826.0.1.3680043.8.498.6160"


@pytest.fixture
def dicom_report(staff_user):
    files = [upload(f"im{i}.dcm", dicom_bytes(study_uid=STUDY_UID, series_uid=STUDY_UID + ".1",
                                              sop_uid=f"{STUDY_UID}.1.{i}", instance_number=i, seed=i))
             for i in (1, 2)]
    study = services.register_upload(staff_user, files, {}).studies[0]
    return explain_and_finalize(analyse_study(study, ("glioma",)))


def _fhir(client, report):
    response = client.get(f"/api/v1/reports/{report.pk}/fhir/")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/fhir+json"
    body = response.json()
    DiagnosticReport.model_validate(body)  # raises on anything FHIR does not allow
    return body


def _contained(body, kind):
    return [r for r in body["contained"] if r["resourceType"] == kind]


def test_a_report_awaiting_review_is_preliminary_with_its_observations(staff_user, dicom_report):
    body = _fhir(token_client(staff_user), dicom_report)
    assert body["status"] == "preliminary"
    assert body["imagingStudy"][0]["identifier"] == {"system": "urn:dicom:uid", "value": f"urn:oid:{STUDY_UID}"}
    (device,) = _contained(body, "Device")
    assert device["deviceName"][0]["name"] == "test-model" and device["version"][0]["value"] == "0123456789ab"
    observations = {o["id"]: o for o in _contained(body, "Observation")}
    assert {"finding", "series-1"} <= set(observations)
    finding = observations["finding"]
    assert finding["status"] == "preliminary"
    assert finding["valueCodeableConcept"]["coding"][0]["code"] == dicom_report.label  # two slices: indeterminate
    assert observations["series-1"]["valueCodeableConcept"]["coding"][0]["code"] == "glioma"
    assert finding["device"] == {"reference": "#model"}
    probabilities = {c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"]
                     for c in observations["series-1"]["component"]}
    assert probabilities["glioma"] > 0.5 and sum(probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert [r["reference"] for r in body["result"]] == [f"#{o}" for o in observations]
    assert "not for diagnostic use" in body["conclusion"]


def test_signed_is_final_amended_is_amended_and_both_read_the_snapshot(staff_user, radiologist, dicom_report):
    client = token_client(staff_user)
    signed = services.sign_report(dicom_report, radiologist, impression="Enhancing mass.")
    Analysis.objects.filter(scan__study=signed.study).update(probabilities={"notumor": 1.0})
    body = _fhir(client, signed)
    assert body["status"] == "final" and "Enhancing mass." in body["conclusion"]
    assert body["resultsInterpreter"][0]["display"]
    series = next(o for o in _contained(body, "Observation") if o["id"] == "series-1")
    signed_p = {c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"] for c in series["component"]}
    assert signed_p["glioma"] > 0.5  # as signed, not the rows changed since
    amended = services.amend_report(signed, radiologist, "", "Enhancing mass; compare prior.")
    body = _fhir(client, amended)
    assert body["status"] == "amended" and all(o["status"] == "amended" for o in _contained(body, "Observation"))


def test_a_fhir_read_is_audited_like_a_report_read(staff_user, dicom_report):
    _fhir(token_client(staff_user), dicom_report)
    assert AuditEvent.objects.filter(action=AuditAction.VIEW_REPORT, report_id=dicom_report.pk, via="api").count() == 1


def test_outsiders_get_no_fhir(outsider, dicom_report):
    assert token_client(outsider).get(f"/api/v1/reports/{dicom_report.pk}/fhir/").status_code == 403


def test_the_fhir_endpoint_is_in_the_openapi_schema(staff_api):
    paths = staff_api.get("/api/v1/schema/?format=json").json()["paths"]
    assert "/api/v1/reports/{id}/fhir/" in paths
