"""Results back to a real PACS (Orthanc on loopback): the SR and overlays land with the
study, the verified SR replaces the unverified one, and a destination that is down costs
a bounded number of attempts, fails with a reason, and an admin's retry sends it."""
from __future__ import annotations

import socket
import threading
from datetime import timedelta

import pytest
from django.db.models import F
from django.test import Client
from django.urls import reverse
from pydicom import dcmread
from pydicom.filebase import DicomBytesIO

from scans import services
from scans.models import Analysis, AuditAction, AuditEvent, Delivery, DeliveryStatus, Destination, DestinationKind
from tests.builders import analyse_study, dicom_bytes, explain_and_finalize, upload
from tests.pacs import dciodvfy, free_port, start_orthanc

pytestmark = pytest.mark.django_db

STUDY_UID = "1.2.826.0.1.3680043.8.498.5150"
SERIES_UID = STUDY_UID + ".1"
SR_CLASS = "1.2.840.10008.5.1.4.1.1.88.34"
SC_CLASS = "1.2.840.10008.5.1.4.1.1.7"


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    server = start_orthanc(tmp_path_factory.mktemp("pacs"))
    yield server
    server.stop()


@pytest.fixture
def pacs(orthanc):
    return Destination.objects.create(name="test PACS", kind=DestinationKind.CSTORE, ae_title="TESTPACS",
                                      host="127.0.0.1", port=orthanc.dicom_port)


def _dicom_report(user, n=3, study_uid=STUDY_UID):
    files = [upload(f"im{i}.dcm", dicom_bytes(study_uid=study_uid, series_uid=study_uid + ".1",
                                              sop_uid=f"{study_uid}.1.{i}", instance_number=i, seed=i))
             for i in range(1, n + 1)]
    result = services.register_upload(user, files, {})
    assert result.accepted == n, result.rejected
    return explain_and_finalize(analyse_study(result.studies[0], ("glioma",)))


def _in_pacs(orthanc, study_uid):
    """SOP class -> list of the datasets Orthanc holds for the study."""
    out = {}
    for instance in orthanc.instances_of_study(study_uid):
        ds = dcmread(DicomBytesIO(orthanc.file(instance["ID"])))
        out.setdefault(str(ds.SOPClassUID), []).append(ds)
    return out


def test_the_sr_and_the_overlays_land_in_the_pacs_with_the_study(staff_user, radiologist, pacs, orthanc, tmp_path):
    report = _dicom_report(staff_user)
    delivery = report.deliveries.get()  # queued by finalize_report: the unverified SR
    assert delivery.status == DeliveryStatus.PENDING and not delivery.verified

    sent = services.send_delivery(delivery.pk)

    assert sent.status == DeliveryStatus.SENT and sent.attempts == 1 and sent.files >= 2
    held = _in_pacs(orthanc, STUDY_UID)
    (sr,) = held[SR_CLASS]
    assert sr.VerificationFlag == "UNVERIFIED" and sr.PatientID == "P-DCM-1" and sr.PatientName == "Test^Person"
    evidence = {r.ReferencedSOPInstanceUID for r in sr.CurrentRequestedProcedureEvidenceSequence[0]
                .ReferencedSeriesSequence[0].ReferencedSOPSequence}
    assert evidence == {f"{STUDY_UID}.1.{i}" for i in (1, 2, 3)}
    captures = held[SC_CLASS]
    assert len(captures) == sent.files - 1
    assert {c.SourceImageSequence[0].ReferencedSOPInstanceUID for c in captures} <= evidence
    assert all("not for diagnostic use" in c.SeriesDescription for c in captures)
    for ds in (sr, *captures):  # as the PACS stored them
        errors, _ = dciodvfy(orthanc.file_of(ds.SOPInstanceUID), tmp_path)
        assert errors == []

    signed = services.sign_report(report, radiologist, impression="Enhancing mass, left.")
    verified = signed.deliveries.get(verified=True)
    services.send_delivery(verified.pk)
    srs = {ds.SOPInstanceUID: ds for ds in _in_pacs(orthanc, STUDY_UID)[SR_CLASS]}
    new = srs[verified.sr_sop_instance_uid]
    assert new.VerificationFlag == "VERIFIED" and new.VerifyingObserverSequence[0].VerifyingObserverName
    replaced = new.PredecessorDocumentsSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert replaced.ReferencedSOPInstanceUID == delivery.sr_sop_instance_uid
    # The overlays were sent again with the same UIDs: the PACS holds one copy of each.
    assert len(_in_pacs(orthanc, STUDY_UID)[SC_CLASS]) == len(captures)

    amended = services.amend_report(signed, radiologist, "", "Enhancing mass, left; see prior.")
    third = amended.deliveries.get()
    services.send_delivery(third.pk)
    latest = dcmread(DicomBytesIO(orthanc.file_of(third.sr_sop_instance_uid)))
    assert latest.PredecessorDocumentsSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence[0] \
        .ReferencedSOPInstanceUID == verified.sr_sop_instance_uid


def test_the_verified_sr_says_what_was_signed_not_what_the_rows_say_now(staff_user, radiologist, pacs, orthanc):
    report = _dicom_report(staff_user, study_uid=STUDY_UID + "1")
    signed = services.sign_report(report, radiologist)
    Analysis.objects.filter(scan__study=signed.study).update(probabilities={"notumor": 1.0})  # after sign-off
    delivery = signed.deliveries.get(verified=True)
    services.send_delivery(delivery.pk)
    sr = dcmread(DicomBytesIO(orthanc.file_of(delivery.sr_sop_instance_uid)))
    values = {i.ConceptNameCodeSequence[0].CodeValue: float(i.MeasuredValueSequence[0].NumericValue)
              for group in sr.ContentSequence if "ContentSequence" in group
              for g in group.ContentSequence if "ContentSequence" in g
              for i in g.ContentSequence if i.ValueType == "NUM"}
    assert values["p-glioma"] > 0.5 and values["p-notumor"] < 0.5


def _age(delivery, seconds):
    """As if ``seconds`` had passed since the delivery's last attempt."""
    Delivery.objects.filter(pk=delivery.pk).update(updated_at=F("updated_at") - timedelta(seconds=seconds + 1))


class CountingRefuser:
    """A TCP port that accepts and at once closes every connection, counting them: a
    destination that is there but broken."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()


def test_a_broken_destination_costs_n_attempts_for_the_whole_study_then_an_admin_retry_sends(
        staff_user, pacs, orthanc, clinic_admin, settings):
    settings.BRAINAI_DELIVERY_MAX_ATTEMPTS = 3
    refuser = CountingRefuser()
    Destination.objects.filter(pk=pacs.pk).update(port=refuser.port)
    report = _dicom_report(staff_user, n=4, study_uid=STUDY_UID + "2")
    delivery = report.deliveries.get()

    first = services.send_delivery(delivery.pk)
    assert first.status == DeliveryStatus.PENDING and "association" in first.reason
    assert services.retry_delay(first) == settings.BRAINAI_DELIVERY_RETRY_S
    assert services.send_delivery(delivery.pk) is None  # a duplicate task before the retry is due
    _age(delivery, settings.BRAINAI_DELIVERY_RETRY_S)
    second = services.send_delivery(delivery.pk)
    assert second.status == DeliveryStatus.PENDING and services.retry_delay(second) == 2 * settings.BRAINAI_DELIVERY_RETRY_S
    _age(delivery, 2 * settings.BRAINAI_DELIVERY_RETRY_S)
    third = services.send_delivery(delivery.pk)
    assert third.status == DeliveryStatus.FAILED and third.attempts == 3
    assert third.reason.startswith("gave up after 3 attempts; last error: C-STORE to TESTPACS@127.0.0.1")
    assert services.send_delivery(delivery.pk) is None  # failed: nothing more is tried
    assert refuser.connections == 3  # one per attempt for all of the study's files, never one per file

    page = Client()
    page.force_login(staff_user)
    assert "gave up after 3 attempts" in page.get(reverse("scans:report", args=[report.pk])).content.decode()

    Destination.objects.filter(pk=pacs.pk).update(port=orthanc.dicom_port)  # the PACS is back
    admin = Client()
    admin.force_login(clinic_admin)
    response = admin.post(reverse("admin:scans_delivery_changelist"),
                          {"action": "retry", "_selected_action": [delivery.pk]}, follow=True)
    assert response.status_code == 200
    retried = Delivery.objects.get(pk=delivery.pk)
    assert retried.status == DeliveryStatus.PENDING and retried.attempts == 0
    assert AuditEvent.objects.filter(action=AuditAction.RETRY_DELIVERY, report_id=report.pk).count() == 1
    assert services.send_delivery(delivery.pk).status == DeliveryStatus.SENT
    assert SR_CLASS in _in_pacs(orthanc, STUDY_UID + "2")


def test_a_destination_that_is_down_fails_with_a_reason(staff_user, pacs, settings):
    settings.BRAINAI_DELIVERY_MAX_ATTEMPTS = 1
    Destination.objects.filter(pk=pacs.pk).update(port=free_port())  # nothing listens
    delivery = _dicom_report(staff_user, n=1, study_uid=STUDY_UID + "3").deliveries.get()
    failed = services.send_delivery(delivery.pk)
    assert failed.status == DeliveryStatus.FAILED and "association" in failed.reason


def test_only_an_admin_may_send_again(staff_user, radiologist, pacs, settings):
    settings.BRAINAI_DELIVERY_MAX_ATTEMPTS = 1
    Destination.objects.filter(pk=pacs.pk).update(port=free_port())
    delivery = _dicom_report(staff_user, n=1, study_uid=STUDY_UID + "4").deliveries.get()
    services.send_delivery(delivery.pk)
    with pytest.raises(services.PermissionDenied):
        services.retry_delivery(delivery, radiologist)


def test_the_rule_says_what_goes_when(staff_user, radiologist, orthanc):
    Destination.objects.create(name="signed only", kind=DestinationKind.CSTORE, ae_title="TESTPACS",
                               host="127.0.0.1", port=orthanc.dicom_port, send_preliminary=False,
                               send_overlays=False)
    Destination.objects.create(name="off", kind=DestinationKind.STOW, url=orthanc.stow_url, enabled=False)
    report = _dicom_report(staff_user, n=1, study_uid=STUDY_UID + "5")
    assert not report.deliveries.exists()
    signed = services.sign_report(report, radiologist)
    (delivery,) = signed.deliveries.all()  # none before sign-off
    assert delivery.verified and not delivery.with_overlays
    assert services.send_delivery(delivery.pk).files == 1  # the SR alone


def test_stow_rs_destinations_get_the_same_files(staff_user, orthanc):
    Destination.objects.create(name="stow", kind=DestinationKind.STOW, url=orthanc.stow_url)
    delivery = _dicom_report(staff_user, n=2, study_uid=STUDY_UID + "6").deliveries.get()
    sent = services.send_delivery(delivery.pk)
    assert sent.status == DeliveryStatus.SENT
    held = _in_pacs(orthanc, STUDY_UID + "6")
    assert len(held[SR_CLASS]) == 1 and len(held[SC_CLASS]) == sent.files - 1


def test_sending_runs_on_its_own_queue():
    from django.conf import settings

    assert settings.CELERY_TASK_ROUTES["workers.tasks.send_results"] == {"queue": "outbound"}


def test_images_without_tags_are_sent_with_the_patient_they_were_uploaded_for(staff_user, pacs, orthanc, tmp_path):
    from tests.builders import ready_report

    report = ready_report(staff_user, 2, patient_id="P-PNG-9")
    sent = services.send_delivery(report.deliveries.get().pk)
    assert sent.status == DeliveryStatus.SENT
    held = _in_pacs(orthanc, report.study.study_instance_uid)
    (sr,) = held[SR_CLASS]
    assert sr.PatientID == "P-PNG-9" and SC_CLASS in held
    assert "SourceImageSequence" not in held[SC_CLASS][0]  # no source instance to name
    for ds in (sr, *held[SC_CLASS]):
        assert dciodvfy(orthanc.file_of(ds.SOPInstanceUID), tmp_path)[0] == []
