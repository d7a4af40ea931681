"""`manage.py dicom_listener` as its own process, fed by storescu and pynetdicom's SCU.

- A study sent by storescu becomes a report awaiting review through the real worker.
- The listener killed mid-association: the sender retries the study; nothing is lost or
  stored twice.
- Killed before a study was quiet: the instances are taken in after the restart.
- The database unavailable: every C-STORE answers 0xC000 and nothing is acknowledged.
- The round trip: a 16-instance study in by storescu (with a sender's retry of part of it),
  analysed, and its SR and overlays out in a real Orthanc: every instance in exactly once,
  nothing duplicated on either side (bench/dicom_roundtrip.py does it with 248).
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest
from django.conf import settings
from pynetdicom import AE
from pynetdicom.sop_class import MRImageStorage

from scans.models import DicomInstance, Report, ReportStatus, Scan, Study, Upload
from tests import builders as b
from tests.e2e.conftest import ROOT, _database_url

pytestmark = [pytest.mark.e2e]

SENDER = "MODALITY1"


class ListenerProcess:
    """One `manage.py dicom_listener` subprocess on a free loopback port."""

    def __init__(self, env: dict, log: Path):
        self.env, self.log_path = env, log
        self.proc = None
        self.port = None

    def start(self) -> "ListenerProcess":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "manage.py", "dicom_listener", "--port", "0"],
                                     cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=log, text=True)
        line = self.proc.stdout.readline()  # "DICOM listener BRAINAI on 127.0.0.1:PORT ..."
        found = re.search(r":(\d+) ", line)
        if not found:
            self.proc.kill()
            pytest.fail(f"the listener did not start: {line!r}\n{self.log()}")
        self.port = int(found.group(1))
        return self

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def listener_env(transactional_db, tmp_path):
    """The environment of a listener on the test database, media and inbox; quiet after 1 s."""
    env = dict(os.environ)
    env.update({
        "DJANGO_SETTINGS_MODULE": "brainai_site.settings",
        "DATABASE_URL": _database_url(),
        "REDIS_URL": settings.CELERY_BROKER_URL,
        "BRAINAI_MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "BRAINAI_DICOM_INBOX": str(tmp_path / "inbox"),
        "BRAINAI_DICOM_ALLOWED": SENDER,
        "BRAINAI_DICOM_STUDY_QUIET_S": "1",
        "BRAINAI_DICOM_MIN_FREE_MB": "0",
        "DJANGO_SILENCED_CHECKS": "brainai.W001",
        "PYTHONUNBUFFERED": "1",
    })
    return env


@pytest.fixture
def listeners(listener_env, tmp_path):
    """Start listeners with ``listeners(**env_overrides)``; all are stopped at the end."""
    started = []

    def start(**overrides):
        env = {**listener_env, **overrides}
        listener = ListenerProcess(env, tmp_path / f"listener{len(started)}.log").start()
        started.append(listener)
        return listener

    yield start
    for listener in started:
        listener.stop()


def _study_files(tmp_path, n, study_uid):
    paths = []
    for i, data in enumerate(b.mr_study(n, study_uid=study_uid, patient_id="P-NET-E2E")):
        path = tmp_path / f"IM{i:04d}.dcm"
        path.write_bytes(data)
        paths.append(path)
    return paths


def _send(port, paths, *, after_each=None):
    """pynetdicom SCU: send in one association; the statuses, stopping at the first lost association."""
    ae = AE(ae_title=SENDER)
    ae.add_requested_context(MRImageStorage)
    assoc = ae.associate("127.0.0.1", port, ae_title="BRAINAI")
    assert assoc.is_established
    statuses = []
    for i, path in enumerate(paths):
        if not assoc.is_established:  # the listener died under us
            break
        try:
            answer = assoc.send_c_store(pydicom.dcmread(path))
        except RuntimeError:  # it died between the check and the send
            break
        if "Status" not in answer:  # no response: the association died while sending
            break
        statuses.append(answer.Status)
        if after_each:
            after_each(i)
    if assoc.is_established:
        assoc.release()
    return statuses


def test_a_study_from_storescu_becomes_a_report_awaiting_review(pipeline, listeners, tmp_path, wait_for):
    listener = listeners()
    uid = "1.2.826.0.1.3680043.8.498.7001"
    paths = _study_files(tmp_path, 4, uid)
    sent = subprocess.run(["storescu", "-aet", SENDER, "-aec", "BRAINAI", "127.0.0.1", str(listener.port),
                           *map(str, paths)], capture_output=True, text=True, timeout=60)
    assert sent.returncode == 0, sent.stderr

    report = wait_for(lambda: Report.objects.current().filter(study__study_instance_uid=uid,
                                                               status=ReportStatus.AWAITING_REVIEW).first(),
                      timeout=240, what="the DICOM study's report")
    assert Scan.objects.filter(study=report.study).count() == 4
    assert Upload.objects.filter(pk__in=DicomInstance.objects.values("upload")).count() == 1
    from scans.models import AuditEvent
    assert AuditEvent.objects.filter(action="upload", via="dicom").count() == 1


def test_the_listener_killed_mid_association_loses_and_duplicates_nothing(listeners, tmp_path, wait_for):
    uid = "1.2.826.0.1.3680043.8.498.7002"
    paths = _study_files(tmp_path, 8, uid)
    first = listeners()

    def kill_after_the_fourth(i):
        if i == 3:
            first.kill()

    statuses = _send(first.port, paths, after_each=kill_after_the_fourth)
    assert statuses == [0, 0, 0, 0]  # four acknowledged, then the association was lost
    assert DicomInstance.objects.count() == 4

    second = listeners()
    assert _send(second.port, paths) == [0] * 8  # the sender retries the whole study
    study = wait_for(lambda: Study.objects.filter(study_instance_uid=uid).first(), timeout=60,
                     what="the study taken in")
    wait_for(lambda: not DicomInstance.objects.filter(taken_in_at__isnull=True).exists(), timeout=60,
             what="every instance taken in")
    assert Scan.objects.filter(study=study).count() == 8
    assert sum(DicomInstance.objects.values_list("duplicates", flat=True)) == 4


def test_instances_waiting_at_a_crash_are_taken_in_after_the_restart(listeners, tmp_path, wait_for):
    uid = "1.2.826.0.1.3680043.8.498.7003"
    first = listeners(BRAINAI_DICOM_STUDY_QUIET_S="3600")  # never quiet before the crash
    assert _send(first.port, _study_files(tmp_path, 3, uid)) == [0, 0, 0]
    first.kill()
    assert DicomInstance.objects.filter(taken_in_at__isnull=True).count() == 3
    assert not Study.objects.filter(study_instance_uid=uid).exists()

    listeners()  # quiet after 1 s: the waiting study is old enough at once
    study = wait_for(lambda: Study.objects.filter(study_instance_uid=uid).first(), timeout=60,
                     what="the study taken in after the restart")
    wait_for(lambda: Scan.objects.filter(study=study).count() == 3, timeout=30, what="its three scans")


def test_the_database_unavailable_answers_0xC000_and_acknowledges_nothing(listeners, tmp_path):
    with socket.socket() as s:  # a port where no database listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = listeners(DATABASE_URL=f"postgres://brainai:pw@127.0.0.1:{port}/brainai")
    assert _send(down.port, _study_files(tmp_path, 2, "1.2.826.0.1.3680043.8.498.7004")) == [0xC000, 0xC000]
    assert "answered 0xC000" in down.log()
    assert not list((tmp_path / "inbox").rglob("*.dcm"))


def _two_series_study(folder, n, study_uid):
    """``n`` MR instances of the dataset's slices over two series, as files."""
    import io

    import numpy as np
    from PIL import Image

    folder.mkdir()
    paths = []
    for i, data in enumerate(b.brain_jpegs(n, "glioma")):
        series = 1 + 2 * i // n
        pixels = np.asarray(Image.open(io.BytesIO(data)).convert("L").resize((160, 160)), dtype=np.uint8)
        path = folder / f"IM{i:04d}.dcm"
        path.write_bytes(b.dicom_bytes(patient_id="P-ROUNDTRIP", study_uid=study_uid,
                                       series_uid=f"{study_uid}.{series}", sop_uid=f"{study_uid}.{series}.{i + 1}",
                                       instance_number=i + 1, pixels=pixels))
        paths.append(path)
    return paths


def test_a_study_in_by_storescu_comes_back_to_the_pacs_with_nothing_lost_or_duplicated(pipeline, listeners, tmp_path,
                                                                                    wait_for):
    from pydicom.filebase import DicomBytesIO

    from scans.models import DeliveryStatus, Destination, DestinationKind
    from tests.pacs import start_orthanc

    orthanc = start_orthanc(tmp_path / "pacs")
    try:
        Destination.objects.create(name="pacs", kind=DestinationKind.CSTORE, ae_title="TESTPACS", host="127.0.0.1",
                                   port=orthanc.dicom_port)
        listener = listeners()
        uid = "1.2.826.0.1.3680043.8.498.7010"
        paths = _two_series_study(tmp_path / "study", 16, uid)
        sent_uids = {f"{uid}.{1 + 2 * i // 16}.{i + 1}" for i in range(16)}
        for batch in (paths, paths[:4]):  # the whole study, then a sender's retry of its first four
            done = subprocess.run(["storescu", "-aet", SENDER, "-aec", "BRAINAI", "127.0.0.1", str(listener.port),
                                   *map(str, batch)], capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr

        report = wait_for(lambda: Report.objects.current().filter(study__study_instance_uid=uid,
                                                                   status=ReportStatus.AWAITING_REVIEW).first(),
                          timeout=300, what="the study's report awaiting review")
        delivery = wait_for(lambda: report.deliveries.filter(status=DeliveryStatus.SENT).first(), timeout=120,
                            what="the SR and overlays sent to the PACS")

        # In: each instance received once and taken in once, the retry only counted.
        rows = DicomInstance.objects.filter(study_instance_uid=uid)
        assert set(rows.values_list("sop_instance_uid", flat=True)) == sent_uids
        assert not rows.filter(taken_in_at__isnull=True).exists()
        assert sum(rows.values_list("duplicates", flat=True)) == 4
        scans = list(Scan.objects.filter(study=report.study).values_list("sop_instance_uid", "status"))
        assert sorted(u for u, _ in scans) == sorted(sent_uids)  # one scan each, none twice
        assert {s for _, s in scans} == {"analyzed"}

        # Out: one SR naming every instance, one capture per key slice, nothing twice.
        held = [pydicom.dcmread(DicomBytesIO(orthanc.file(i["ID"]))) for i in orthanc.instances_of_study(uid)]
        assert len(held) == delivery.files == len({ds.SOPInstanceUID for ds in held})
        (sr,) = [ds for ds in held if ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"]
        captures = [ds for ds in held if ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"]
        assert len(captures) == delivery.files - 1 >= 2  # at least one key slice per series
        evidence = {ref.ReferencedSOPInstanceUID for series in sr.CurrentRequestedProcedureEvidenceSequence[0]
                    .ReferencedSeriesSequence for ref in series.ReferencedSOPSequence}
        assert evidence == sent_uids
        assert {c.SourceImageSequence[0].ReferencedSOPInstanceUID for c in captures} <= sent_uids
        assert {ds.StudyInstanceUID for ds in held} == {uid}
    finally:
        orthanc.stop()
