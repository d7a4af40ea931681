"""DICOMweb against our endpoint with a real client (dicomweb-client over HTTP to a live server):
STOW-RS stores a study as one upload and answers per-instance failures; QIDO-RS lists what
we hold and records the read; both are in the OpenAPI schema; the API's roles apply."""
from __future__ import annotations

import io

import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from rest_framework.authtoken.models import Token

from scans.models import AuditAction, AuditEvent, Scan, Study, Via
from tests import builders as b

pytestmark = pytest.mark.django_db(transaction=True)

STUDY = "1.2.826.0.1.3680043.8.498.95"


def _client(live_server, user):
    token, _ = Token.objects.get_or_create(user=user)
    return DICOMwebClient(url=f"{live_server.url}/dicomweb", headers={"Authorization": f"Token {token.key}"})


def _datasets(n=3, study=STUDY):
    return [pydicom.dcmread(io.BytesIO(data)) for data in b.mr_study(n, study_uid=study, patient_id="P-STOW")]


def test_stow_rs_stores_a_study_as_one_dicomweb_upload(live_server, staff_user):
    answer = _client(live_server, staff_user).store_instances(_datasets(3))

    referenced = answer.ReferencedSOPSequence
    assert sorted(item.ReferencedSOPInstanceUID for item in referenced) == [f"{STUDY}.1.{i}" for i in (1, 2, 3)]
    assert "FailedSOPSequence" not in answer
    study = Study.objects.get(study_instance_uid=STUDY)
    assert Scan.objects.filter(study=study).count() == 3
    assert AuditEvent.objects.filter(action=AuditAction.UPLOAD, via=Via.DICOMWEB).count() == 1


def test_stow_rs_answers_each_failed_instance_with_its_reason(live_server, staff_user):
    client = _client(live_server, staff_user)
    client.store_instances(_datasets(2))
    datasets = _datasets(3)  # two already stored, one new
    secondary = pydicom.dcmread(io.BytesIO(b.dicom_bytes(study_uid=STUDY, sop_uid=f"{STUDY}.9.1")))
    secondary.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"  # CT Image Storage: not a class we store
    secondary.file_meta.MediaStorageSOPClassUID = secondary.SOPClassUID

    answer = client.store_instances([*datasets, secondary])  # 202: some stored, some failed

    assert [i.ReferencedSOPInstanceUID for i in answer.ReferencedSOPSequence] == [f"{STUDY}.1.3"]
    reasons = {i.ReferencedSOPInstanceUID: i.FailureReason for i in answer.FailedSOPSequence}
    assert reasons == {f"{STUDY}.1.1": 0x0111, f"{STUDY}.1.2": 0x0111, f"{STUDY}.9.1": 0x0122}


def test_stow_rs_needs_a_clinic_role(live_server, django_user_model):
    outsider = b.make_user(django_user_model, "outsider")
    with pytest.raises(requests.HTTPError) as refused:
        _client(live_server, outsider).store_instances(_datasets(1))
    assert refused.value.response.status_code == 403
    assert not Study.objects.exists()


def test_stow_rs_refuses_other_media_types(live_server, staff_user):
    token, _ = Token.objects.get_or_create(user=staff_user)
    answer = requests.post(f"{live_server.url}/dicomweb/studies", data=b"{}", timeout=10,
                           headers={"Authorization": f"Token {token.key}", "Content-Type": "application/json"})
    assert answer.status_code == 415


def test_qido_rs_finds_studies_by_patient_and_records_the_read(live_server, staff_user):
    client = _client(live_server, staff_user)
    client.store_instances(_datasets(2))
    client.store_instances(_datasets(1, study="1.2.826.0.1.3680043.8.498.96"))

    found = client.search_for_studies(search_filters={"PatientID": "P-STOW"})
    assert sorted(s["0020000D"]["Value"][0] for s in found) == [STUDY, "1.2.826.0.1.3680043.8.498.96"]
    mine = next(s for s in found if s["0020000D"]["Value"][0] == STUDY)
    assert mine["00201208"]["Value"] == [2]
    assert client.search_for_studies(search_filters={"PatientID": "nobody"}) == []
    reads = AuditEvent.objects.filter(action=AuditAction.LIST_STUDIES, via=Via.DICOMWEB)
    assert reads.count() == 2
    assert sorted(reads.first().detail["ids"] + reads.last().detail["ids"]) == \
        sorted(Study.objects.values_list("pk", flat=True))


def test_both_are_in_the_openapi_schema(staff_user):
    client = b.token_client(staff_user)
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operations = schema["paths"]["/dicomweb/studies"]
    assert "multipart/related" in operations["post"]["requestBody"]["content"]
    assert {p["name"] for p in operations["get"]["parameters"]} >= {"PatientID"}
