"""The DICOM listener in this process, fed by real senders: dcmtk's storescu and pynetdicom's SCU.

What the issue asks of it: C-ECHO, storage of a study taken in as one upload once quiet,
duplicates counted never stored twice, a calling AE outside the allow-list refused, a
signed study refusing new instances, and 0xA700 when the inbox has no room.
"""
from __future__ import annotations

import subprocess
import time

import pydicom
import pytest
from pynetdicom import AE
from pynetdicom.sop_class import MRImageStorage, Verification

from scans.listener import Listener
from scans.models import DicomInstance, Scan, Study, Upload, Via
from scans.services import dicom_inbox
from tests import builders as b

# `sent`: no task reaches a worker left running by the e2e tests (tests/conftest.py).
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("sent")]

STUDY = "1.2.826.0.1.3680043.8.498.90"


@pytest.fixture
def listener(settings, tmp_path):
    settings.BRAINAI_DICOM_INBOX = tmp_path / "inbox"
    settings.BRAINAI_DICOM_MIN_FREE_MB = 0
    server = Listener(host="127.0.0.1", port=0, ae_title="BRAINAI", allowed=["STORESCU", "PYSCU@127.0.0.1"],
                      quiet_s=3600)  # tests take in explicitly: no timer race
    server.start()
    yield server
    server.stop()


def _files(tmp_path, study=STUDY, n=3):
    paths = []
    for i, data in enumerate(b.mr_study(n, study_uid=study)):
        path = tmp_path / f"IM{i}.dcm"
        path.write_bytes(data)
        paths.append(path)
    return paths


def storescu(listener, paths, calling="STORESCU"):
    """dcmtk's storescu (Debian's dcmtk, installed by scripts/install-test-tools.sh)."""
    return subprocess.run(["storescu", "-aet", calling, "-aec", listener.ae_title, "127.0.0.1", str(listener.port),
                           *map(str, paths)], capture_output=True, text=True, timeout=60)


def pyscu_send(listener, paths, calling="PYSCU"):
    """Send with pynetdicom's SCU; return the status of each C-STORE (None if not associated)."""
    ae = AE(ae_title=calling)
    ae.add_requested_context(MRImageStorage)
    assoc = ae.associate("127.0.0.1", listener.port, ae_title=listener.ae_title)
    if not assoc.is_established:
        return None
    statuses = [assoc.send_c_store(pydicom.dcmread(p)).Status for p in paths]
    assoc.release()
    return statuses


def test_it_answers_c_echo(listener):
    ae = AE(ae_title="PYSCU")
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", listener.port, ae_title="BRAINAI")
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0x0000
    assoc.release()


def test_a_study_from_storescu_is_kept_then_taken_in_as_one_dicom_upload(listener, tmp_path):
    paths = _files(tmp_path)
    done = storescu(listener, paths)
    assert done.returncode == 0, done.stderr
    assert DicomInstance.objects.filter(study_instance_uid=STUDY, taken_in_at__isnull=True).count() == 3
    assert not Study.objects.filter(study_instance_uid=STUDY).exists()  # still waiting for quiet

    assert dicom_inbox.take_in_quiet_studies(quiet_s=3600) == []  # not quiet yet
    results = dicom_inbox.take_in_quiet_studies(quiet_s=0)

    assert len(results) == 1 and results[0].accepted == 3
    study = Study.objects.get(study_instance_uid=STUDY)
    assert Scan.objects.filter(study=study).count() == 3
    assert DicomInstance.objects.filter(taken_in_at__isnull=True).count() == 0
    assert not list((tmp_path / "inbox").rglob("*.dcm"))  # the inbox file goes once stored
    from scans.models import AuditEvent
    assert AuditEvent.objects.filter(action="upload", via=Via.DICOM, detail__upload=results[0].upload.pk).exists()


def test_duplicates_are_counted_never_stored_twice(listener, tmp_path):
    paths = _files(tmp_path)
    assert pyscu_send(listener, paths) == [0, 0, 0]
    assert pyscu_send(listener, paths[:2]) == [0, 0]  # success, so the sender does not retry for ever
    assert DicomInstance.objects.count() == 3
    assert sorted(DicomInstance.objects.values_list("duplicates", flat=True)) == [0, 1, 1]
    dicom_inbox.take_in_quiet_studies(quiet_s=0)
    assert Scan.objects.filter(study__study_instance_uid=STUDY).count() == 3


def test_a_calling_ae_not_allowed_is_refused_and_logged_by_title_only(listener, tmp_path, caplog):
    paths = _files(tmp_path, n=1)
    assert pyscu_send(listener, paths, calling="INTRUDER") is None
    assert DicomInstance.objects.count() == 0
    refusals = [r.getMessage() for r in caplog.records if "refused an association" in r.getMessage()]
    assert refusals and "INTRUDER" in refusals[0]
    assert "P-DCM-NET" not in caplog.text


def test_an_allowed_title_from_another_address_is_refused(settings, tmp_path):
    server = Listener(host="127.0.0.1", port=0, allowed=["PYSCU@10.9.9.9"], quiet_s=3600)
    settings.BRAINAI_DICOM_INBOX = tmp_path / "inbox"
    server.start()
    try:
        assert pyscu_send(server, _files(tmp_path, n=1)) is None
    finally:
        server.stop()


def test_an_instance_after_intake_reopens_the_study_and_a_signed_study_refuses(listener, tmp_path, django_user_model):
    paths = _files(tmp_path, n=3)
    assert pyscu_send(listener, paths[:2]) == [0, 0]
    dicom_inbox.take_in_quiet_studies(quiet_s=0)
    study = Study.objects.get(study_instance_uid=STUDY)
    assert pyscu_send(listener, paths[2:]) == [0]
    dicom_inbox.take_in_quiet_studies(quiet_s=0)
    assert Scan.objects.filter(study=study).count() == 3
    assert Upload.objects.count() == 2

    radiologist = b.make_user(django_user_model, "rad-dicom", "radiologist")
    b.analyse_study(study)
    b.explain_and_finalize(study.report)
    from scans.services import sign_report
    sign_report(study.report, radiologist)
    late = b.dicom_bytes(patient_id="P-DCM-NET", study_uid=STUDY, series_uid=f"{STUDY}.2", sop_uid=f"{STUDY}.2.1")
    (tmp_path / "late.dcm").write_bytes(late)
    assert pyscu_send(listener, [tmp_path / "late.dcm"]) == [dicom_inbox.REFUSED_NOT_AUTHORIZED]
    assert not DicomInstance.objects.filter(sop_instance_uid=f"{STUDY}.2.1").exists()


def test_no_room_in_the_inbox_answers_0xA700_and_keeps_nothing(listener, tmp_path, settings):
    settings.BRAINAI_DICOM_MIN_FREE_MB = 10 ** 9  # more than any disk: the real free-space check says no
    assert pyscu_send(listener, _files(tmp_path, n=1)) == [0xA700]
    assert DicomInstance.objects.count() == 0
    assert not list((tmp_path / "inbox").rglob("*.dcm"))
    settings.BRAINAI_DICOM_MIN_FREE_MB = 0
    assert pyscu_send(listener, _files(tmp_path, n=1)) == [0]  # the sender's retry is kept


def test_the_database_down_answers_0xC000_and_the_retry_is_kept(listener, tmp_path):
    from django.db import connections
    from django.db.utils import OperationalError

    def down(execute, sql, params, many, context):
        raise OperationalError("database is down")

    # Every connection the association threads open fails each query, as a stopped server would.
    from django.db.backends.signals import connection_created

    def fail(sender, connection, **kwargs):
        connection.execute_wrappers.append(down)

    connection_created.connect(fail)
    for conn in connections.all():
        conn.close()
    try:
        assert pyscu_send(listener, _files(tmp_path, n=1)) == [0xC000]
    finally:
        connection_created.disconnect(fail)
    time.sleep(0.1)
    assert pyscu_send(listener, _files(tmp_path, n=1)) == [0]
    assert DicomInstance.objects.count() == 1


# --- grouping: one quiet period per study, or per (calling AE, study) ----------------------


def _two_senders_one_study(listener, tmp_path):
    """STORESCU sends series 1 (3 instances), PYSCU series 2 (2 instances) of one study; the
    first sender's instances are then made ten minutes old, the second's stay fresh."""
    from datetime import timedelta

    from django.utils import timezone

    (tmp_path / "a").mkdir()
    first = _files(tmp_path / "a", n=3)
    second = []
    for i in (1, 2):
        path = tmp_path / f"b{i}.dcm"
        path.write_bytes(b.dicom_bytes(patient_id="P-DCM-NET", study_uid=STUDY, series_uid=f"{STUDY}.2",
                                       sop_uid=f"{STUDY}.2.{i}", instance_number=i, seed=i))
        second.append(path)
    assert storescu(listener, first).returncode == 0
    assert pyscu_send(listener, second) == [0, 0]
    DicomInstance.objects.filter(calling_ae="STORESCU").update(received_at=timezone.now() - timedelta(minutes=10))
    return first, second


def test_grouped_by_study_a_busy_second_sender_holds_the_whole_study(listener, tmp_path):
    _two_senders_one_study(listener, tmp_path)

    assert dicom_inbox.take_in_quiet_studies(quiet_s=60, group_by="study") == []  # PYSCU's part is fresh
    assert not Study.objects.filter(study_instance_uid=STUDY).exists()

    (result,) = dicom_inbox.take_in_quiet_studies(quiet_s=0, group_by="study")
    assert result.accepted == 5  # both senders' parts, one upload
    assert Upload.objects.count() == 1
    assert Scan.objects.filter(study__study_instance_uid=STUDY).count() == 5


def test_grouped_by_ae_and_study_each_senders_part_is_taken_in_on_its_own(listener, tmp_path):
    _two_senders_one_study(listener, tmp_path)

    (first,) = dicom_inbox.take_in_quiet_studies(quiet_s=60, group_by="ae_study")
    assert first.accepted == 3
    assert set(DicomInstance.objects.filter(upload=first.upload).values_list("calling_ae", flat=True)) == {"STORESCU"}
    assert DicomInstance.objects.filter(calling_ae="PYSCU", taken_in_at__isnull=True).count() == 2
    study = Study.objects.get(study_instance_uid=STUDY)
    assert Scan.objects.filter(study=study).count() == 3

    (second,) = dicom_inbox.take_in_quiet_studies(quiet_s=0, group_by="ae_study")
    assert second.accepted == 2 and second.upload != first.upload
    assert set(DicomInstance.objects.filter(upload=second.upload).values_list("calling_ae", flat=True)) == {"PYSCU"}
    assert Study.objects.filter(study_instance_uid=STUDY).count() == 1  # the same study, reopened
    assert Scan.objects.filter(study=study).count() == 5


def test_grouped_by_ae_the_same_instances_from_two_senders_are_stored_once(listener, tmp_path, settings):
    settings.BRAINAI_DICOM_GROUP_BY = "ae_study"
    paths = _files(tmp_path, n=3)
    assert storescu(listener, paths).returncode == 0
    assert pyscu_send(listener, paths) == [0, 0, 0]  # the second sender's copies: counted, not stored

    (result,) = dicom_inbox.take_in_quiet_studies(quiet_s=0)  # the setting picks the grouping
    assert result.accepted == 3
    assert set(DicomInstance.objects.values_list("calling_ae", flat=True)) == {"STORESCU"}
    assert sum(DicomInstance.objects.values_list("duplicates", flat=True)) == 3
    assert Scan.objects.filter(study__study_instance_uid=STUDY).count() == 3


def test_an_unknown_grouping_is_refused():
    with pytest.raises(ValueError, match="grouping"):
        dicom_inbox.take_in_quiet_studies(quiet_s=0, group_by="sender")
