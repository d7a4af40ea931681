"""Worker faults with a real Redis and real Celery worker processes: the pool process
killed mid-study, a warm shutdown mid-study, and a poison image that kills the worker
every time. Small studies of the cnn model, one scan per batch, so a fault lands between
batches (docs/operations.md "Faults")."""
from __future__ import annotations

import signal
import time

import pytest

from scans.models import Analysis, Report, ReportStatus, Scan, ScanStatus
from tests import builders as b
from tests.builders import token_client
from tests.e2e.faults import POISON, deliveries, fault_stack, kill_pool, wait_until  # noqa: F401

pytestmark = [pytest.mark.e2e]

SLOW = {"BRAINAI_BATCH_SIZE": 1, "BRAINAI_FAULT_DECODE_DELAY_S": 1.5}


def _upload(user, datas, patient) -> int:
    files = [b.upload(f"{patient}-{i}.png", data) for i, data in enumerate(datas)]
    response = token_client(user).post("/api/v1/uploads/", {"files": files, "patient_id": patient, "model": "cnn"},
                                       format="multipart")
    assert response.status_code == 202, response.content
    assert response.json()["accepted"] == len(datas)
    return response.json()["studies"][0]["id"]


def _awaiting(study_id):
    return lambda: Report.objects.current().filter(study_id=study_id, status=ReportStatus.AWAITING_REVIEW).first()


def _analysed(study_id) -> int:
    return Scan.objects.filter(study_id=study_id, status=ScanStatus.ANALYZED).count()


def _analysed_once(study_id, n):
    scans = list(Scan.objects.filter(study_id=study_id))
    assert len(scans) == n and all(s.status == ScanStatus.ANALYZED for s in scans), [s.status for s in scans]
    assert Analysis.objects.filter(scan__study_id=study_id).count() == n
    return {s.pk: s.attempts for s in scans}


def test_kill_9_of_the_pool_process_mid_study_loses_and_duplicates_nothing(fault_stack, staff_user):
    worker = fault_stack.start_worker(**SLOW)
    study_id = _upload(staff_user, [b.png_bytes(seed=900 + i) for i in range(4)], "MRN-K9")
    wait_until(lambda: _analysed(study_id) >= 1, 180, "the first slice", fault_stack)
    assert _analysed(study_id) < 4, "the study finished before the kill: nothing was tested"
    kill_pool(worker)

    wait_until(_awaiting(study_id), 240, "the report after the kill", fault_stack)
    attempts = _analysed_once(study_id, 4)
    assert "WorkerLostError" in worker.log()
    assert deliveries(worker) == 2  # the first delivery, then its requeue after the kill
    # Slices committed before the kill were not analysed again; the one in hand was, once.
    assert sorted(attempts.values()) in ([1, 1, 1, 2], [1, 1, 1, 1]), attempts


def test_a_warm_shutdown_mid_study_finishes_it_and_loses_nothing(fault_stack, staff_user):
    worker = fault_stack.start_worker(**SLOW)
    study_id = _upload(staff_user, [b.png_bytes(seed=920 + i) for i in range(3)], "MRN-TERM")
    wait_until(lambda: _analysed(study_id) >= 1, 180, "the first slice", fault_stack)
    worker.proc.send_signal(signal.SIGTERM)
    worker.proc.wait(120)  # warm shutdown: the study in hand is finished first
    assert _analysed(study_id) == 3
    assert "Warm shutdown" in worker.log() or "warm shutdown" in worker.log()

    fault_stack.start_worker()  # the explanation queued meanwhile waits in Redis for it
    wait_until(_awaiting(study_id), 240, "the report after the restart", fault_stack)
    assert set(_analysed_once(study_id, 3).values()) == {1}


def test_a_poison_image_is_given_up_on_after_max_attempts_and_the_rest_completes(fault_stack, staff_user):
    worker = fault_stack.start_worker(BRAINAI_BATCH_SIZE=1, BRAINAI_MAX_ATTEMPTS=2)
    datas = [b.png_bytes(seed=940), b.png_bytes(seed=941) + POISON, b.png_bytes(seed=942)]
    study_id = _upload(staff_user, datas, "MRN-POISON")

    report = wait_until(_awaiting(study_id), 300, "the report despite the poison slice", fault_stack)
    scans = list(Scan.objects.filter(study_id=study_id).order_by("pk"))
    assert [s.status for s in scans] == [ScanStatus.ANALYZED, ScanStatus.FAILED, ScanStatus.ANALYZED]
    assert "gave up after 2 attempts" in scans[1].error
    assert report.key_scan_id in (scans[0].pk, scans[2].pk)
    # Deliveries: 2 that died on the poison slice + the one that gave up on it and finished.
    assert deliveries(worker) == 3
    time.sleep(5)  # no requeue loop: nothing more arrives
    assert deliveries(worker) == 3 and worker.log().count("WorkerLostError") >= 2
