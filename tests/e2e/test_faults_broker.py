"""Broker faults with a real Redis and real Celery workers: Redis down during an upload,
Redis flushed with work queued and in hand, and the periodic sweeper (celery beat ->
workers.tasks.sweep_stalled) that sends again what the database says is waiting
(docs/operations.md "Faults")."""
from __future__ import annotations

import time

import pytest
from kombu.transport.redis import PRIORITY_STEPS, Channel

from scans import services
from scans.models import Analysis, Report, ReportStatus, Scan, ScanStatus, Study, StudyStatus
from tests import builders as b
from tests.builders import token_client
from tests.e2e.faults import deliveries, fault_stack, wait_until  # noqa: F401

pytestmark = [pytest.mark.e2e]

SWEEP = {"BRAINAI_SWEEP_INTERVAL_S": 2}


def gpu_waiting(redis) -> int:
    """Tasks waiting on the gpu queue, every lane (each priority step is its own Redis list)."""
    return sum(redis.llen(f"gpu{Channel.sep}{step}" if step else "gpu") for step in PRIORITY_STEPS)


def _upload(user, n, seed, patient):
    files = [b.upload(f"{patient}-{i}.png", b.png_bytes(seed=seed + i)) for i in range(n)]
    started = time.monotonic()
    response = token_client(user).post("/api/v1/uploads/", {"files": files, "patient_id": patient, "model": "cnn"},
                                       format="multipart")
    assert response.status_code == 202, response.content
    assert response.json()["accepted"] == n
    return response.json()["studies"][0]["id"], time.monotonic() - started


def _awaiting(study_id):
    return lambda: Report.objects.current().filter(study_id=study_id, status=ReportStatus.AWAITING_REVIEW).first()


def _each_scan_analysed_once(study_id, n):
    scans = list(Scan.objects.filter(study_id=study_id))
    assert len(scans) == n and {s.status for s in scans} == {ScanStatus.ANALYZED}
    assert Analysis.objects.filter(scan__study_id=study_id).count() == n
    assert {s.attempts for s in scans} == {1}, "a scan was analysed twice"


def test_an_upload_while_redis_is_down_is_stored_answered_and_sent_when_it_is_back(fault_stack, staff_user):
    worker = fault_stack.start_worker(beat=True, **SWEEP)
    fault_stack.stop_redis()
    study_id, seconds = _upload(staff_user, 2, 960, "MRN-RDOWN")
    print(f"upload answered in {seconds:.1f} s with Redis down")
    assert seconds < 30
    assert Study.objects.get(pk=study_id).status == StudyStatus.ANALYZING
    assert Scan.objects.filter(study_id=study_id, status=ScanStatus.PENDING).count() == 2
    time.sleep(3)  # a sweep or two find the broker down
    fault_stack.start_redis()  # empty: whatever was queued before is gone too

    report = wait_until(_awaiting(study_id), 240, "the report once Redis is back", fault_stack)
    _each_scan_analysed_once(study_id, 2)
    assert "sweep requeued lost work" in worker.log()

    # A lost detail pass is swept too: the key slice's detail, gone as if never sent, comes back.
    key = lambda: Analysis.objects.get(scan_id=report.key_scan_id)  # noqa: E731
    wait_until(lambda: key().detail_computed, 240, "the key slice's detail pass", fault_stack)
    Analysis.objects.filter(scan_id=report.key_scan_id).update(faithfulness=None, saliency="")
    wait_until(lambda: key().detail_computed, 240, "the swept detail pass", fault_stack)


def test_flushall_with_work_queued_and_in_hand_every_scan_reaches_a_final_state_once(fault_stack, staff_user):
    worker = fault_stack.start_worker(beat=True, BRAINAI_BATCH_SIZE=1, BRAINAI_FAULT_DECODE_DELAY_S=1.5, **SWEEP)
    redis = fault_stack.client()
    first, _ = _upload(staff_user, 3, 970, "MRN-FLUSH1")
    second, _ = _upload(staff_user, 2, 980, "MRN-FLUSH2")
    wait_until(lambda: Scan.objects.filter(study_id=first, status=ScanStatus.ANALYZED).exists(), 180,
               "the first study to be in hand", fault_stack)
    assert gpu_waiting(redis) == 1, "the second study should be waiting in the queue"
    time.sleep(2.5)  # a sweep runs meanwhile: both studies are in the broker, nothing is sent
    assert deliveries(worker) == 1

    redis.flushall()
    for study_id, n in ((first, 3), (second, 2)):
        wait_until(_awaiting(study_id), 240, f"study {study_id} after FLUSHALL", fault_stack)
        _each_scan_analysed_once(study_id, n)
    # The second study was sent again by the sweep. The first was not: with one pool
    # process the sweep runs after it, when it is no longer analysing. (A task sent twice
    # is a no-op: tests/e2e/test_pipeline.py sends a finished study's tasks again.)
    assert deliveries(worker) == 2
    assert "sweep requeued lost work" in worker.log()


def test_two_sweepers_send_a_lost_task_once(fault_stack, staff_user):
    redis = fault_stack.client()
    study = b.upload_study(staff_user, 1, seed=990, patient_id="MRN-SWEEP")
    assert gpu_waiting(redis) == 1  # sent on commit

    assert services.sweep() == {"analyze": 0, "explain": 0, "finalize": 0, "present": 1}
    redis.flushall()  # the queued task and the sweep lock are gone
    assert services.sweep() == {"analyze": 1, "explain": 0, "finalize": 0}
    assert services.sweep() is None  # a second sweeper within the interval: locked out
    assert services.requeue_stalled(0)["analyze"] == 0  # and without the lock, the broker has it
    assert gpu_waiting(redis) == 1
    assert Study.objects.get(pk=study.pk).status == StudyStatus.ANALYZING
