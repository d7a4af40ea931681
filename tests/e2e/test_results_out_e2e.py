"""Results back to a PACS through the real queue: a DICOM upload is analysed by the worker,
its unverified SR reaches Orthanc on its own (queued on commit, queue ``outbound``), and
signing sends the verified SR that replaces it."""
from __future__ import annotations

import pytest
from pydicom import dcmread
from pydicom.filebase import DicomBytesIO

from scans.models import DeliveryStatus, Destination, DestinationKind, Report
from tests import builders as b
from tests.builders import token_client
from tests.pacs import start_orthanc

pytestmark = [pytest.mark.e2e]

STUDY_UID = "1.2.826.0.1.3680043.8.498.8180"
SR_CLASS = "1.2.840.10008.5.1.4.1.1.88.34"


@pytest.fixture
def orthanc(tmp_path):
    server = start_orthanc(tmp_path)
    yield server
    server.stop()


def _srs(orthanc):
    return [ds for ds in (dcmread(DicomBytesIO(orthanc.file(i["ID"]))) for i in orthanc.instances_of_study(STUDY_UID))
            if ds.SOPClassUID == SR_CLASS]


def test_the_sr_goes_back_on_review_and_again_on_sign_off(pipeline, staff_user, radiologist, orthanc, wait_for):
    Destination.objects.create(name="pacs", kind=DestinationKind.CSTORE, ae_title="TESTPACS", host="127.0.0.1",
                               port=orthanc.dicom_port)
    files = [b.upload(f"im{i}.dcm", b.dicom_bytes(study_uid=STUDY_UID, series_uid=STUDY_UID + ".1",
                                                  sop_uid=f"{STUDY_UID}.1.{i}", instance_number=i, seed=i))
             for i in (1, 2, 3)]
    response = token_client(staff_user).post("/api/v1/uploads/", {"files": files}, format="multipart")
    assert response.status_code == 202, response.content

    wait_for(lambda: len(_srs(orthanc)) == 1, timeout=300, what="the unverified SR in the PACS")
    report = Report.objects.current().get(study__study_instance_uid=STUDY_UID)
    # The worker records the send after the PACS has answered: wait for the row, not only the file.
    wait_for(lambda: report.deliveries.get().status == DeliveryStatus.SENT, timeout=60, what="the send recorded")
    assert _srs(orthanc)[0].VerificationFlag == "UNVERIFIED"

    signed = token_client(radiologist).post(f"/api/v1/reports/{report.pk}/sign/", {}, format="json")
    assert signed.status_code == 200, signed.content

    wait_for(lambda: len(_srs(orthanc)) == 2, timeout=120, what="the verified SR in the PACS")
    flags = sorted(ds.VerificationFlag for ds in _srs(orthanc))
    assert flags == ["UNVERIFIED", "VERIFIED"]
    wait_for(lambda: {d.status for d in report.deliveries.all()} == {DeliveryStatus.SENT}, timeout=60,
             what="both sends recorded")
