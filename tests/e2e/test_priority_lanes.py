"""Priority lanes (issue #20) with a real redis-server and a real Celery worker process.

Each test has a private Redis (``fault_stack``, tests/e2e/faults.py) so the backlog is
exactly what the test queued, and starts its worker when the test says. The worker's
decode step is slowed (BRAINAI_FAULT_DECODE_DELAY_S) only so that a backlog exists while
the test uploads; every assertion is on the order in which scans were analysed
(``Scan.analyzed_at``, written by the one worker process) and on pipeline events, never
on how long anything took.
"""
from __future__ import annotations

import pytest
from django.utils import timezone

from scans import services
from scans.models import EventKind, PipelineEvent, Priority, Scan, ScanStatus, Study
from scans.services.queue import ANALYZE_STUDY, in_broker, lane_lengths, send_now
from tests import builders as b
from tests.e2e.faults import fault_stack, wait_until  # noqa: F401  (fixture)

pytestmark = [pytest.mark.e2e]

BACKLOG = 20


def _upload(user, n: int, start: int, patient: str, **kw) -> Study:
    files = [b.upload(f"s{start + i}.jpg", data) for i, data in enumerate(b.brain_jpegs(n, "meningioma", start))]
    result = services.register_upload(user, files, {"patient_id": patient}, **kw)
    assert result.accepted == n, result.rejected
    return result.studies[0]


def _first_analysed(study_ids) -> dict[int, object]:
    """Study id -> when its first scan was analysed (None: not yet)."""
    first = {i: None for i in study_ids}
    for study_id, at in Scan.objects.filter(study_id__in=study_ids, status=ScanStatus.ANALYZED).values_list(
            "study_id", "analyzed_at"):
        first[study_id] = at if first[study_id] is None else min(first[study_id], at)
    return first


def _claimed(study_ids) -> set[int]:
    """Studies a worker has started: at least one scan claimed (an attempt counted)."""
    return set(Scan.objects.filter(study_id__in=study_ids, attempts__gt=0).values_list("study_id", flat=True))


def _empty_gpu_queue(stack) -> None:
    """Drop every message waiting on the gpu queue (its lists only: the bindings stay)."""
    from kombu.transport.redis import PRIORITY_STEPS, Channel

    stack.client().delete(*[f"gpu{Channel.sep}{step}" if step else "gpu" for step in PRIORITY_STEPS])


def _closed_window() -> str:
    """A BRAINAI_RESEARCH_HOURS two hours wide that holds neither this hour nor the next."""
    hour = timezone.localtime().hour
    return f"{(hour + 2) % 24:02d}-{(hour + 4) % 24:02d}"


# --- the broker side, no worker ---------------------------------------------------------------


def test_each_lane_is_its_own_redis_list_and_a_change_moves_the_waiting_message(fault_stack, staff_user,
                                                                                radiologist):
    assert lane_lengths() == {"urgent": 0, "routine": 0, "research": 0, "detail": 0}
    routine = _upload(staff_user, 1, 0, "P-L1")
    urgent = _upload(staff_user, 1, 1, "P-L2", priority="urgent")
    research = _upload(staff_user, 1, 2, "P-L3", priority="research")
    send_now("workers.tasks.analyze_detail", routine.pk, [1], priority=9)
    assert lane_lengths() == {"urgent": 1, "routine": 1, "research": 1, "detail": 1}

    # A send that names no step (an older caller, a retry) lands in the routine lane.
    _empty_gpu_queue(fault_stack)
    send_now(ANALYZE_STUDY, routine.pk)
    assert lane_lengths()["routine"] == 1

    # A waiting study moved to another lane: one message, in the new lane; the sweep sees it.
    assert services.set_priority(routine, "urgent", user=radiologist)
    assert lane_lengths() == {"urgent": 1, "routine": 0, "research": 0, "detail": 0}
    assert (ANALYZE_STUDY, routine.pk) in in_broker(0)
    counts = services.requeue_stalled()
    assert counts["present"] == 1 and counts["analyze"] == 2  # urgent and research were flushed: sent again
    assert lane_lengths() == {"urgent": 2, "routine": 0, "research": 1, "detail": 0}
    assert {urgent.pk, research.pk, routine.pk} == {arg for task, arg in in_broker(0) if task == ANALYZE_STUDY}


def test_a_study_sent_first_goes_to_the_head_of_its_lane(fault_stack, staff_user):
    from kombu.transport.redis import Channel

    from scans.services.queue import _task_key, send_first

    a, b_, c = (_upload(staff_user, 1, 30 + i, f"P-F{i}").pk for i in range(3))  # routine, in this order
    assert send_first(ANALYZE_STUDY, 999001, priority=3)
    queued = fault_stack.client().lrange(f"gpu{Channel.sep}3", 0, -1)  # BRPOP takes from the right
    assert [_task_key(m)[1] for m in reversed(queued)] == [999001, a, b_, c]


# --- with a worker ----------------------------------------------------------------------------


def test_an_urgent_study_uploaded_behind_a_routine_backlog_is_analysed_next(fault_stack, staff_user):
    routine = [_upload(staff_user, 1 + i % 2, 10 + 2 * i, f"P-R{i}").pk for i in range(BACKLOG)]
    assert lane_lengths()["routine"] == BACKLOG
    worker = fault_stack.start_worker(BRAINAI_FAULT_DECODE_DELAY_S=0.4)
    wait_until(lambda: _claimed(routine), 300, "the worker to start on the backlog", fault_stack)

    urgent = _upload(staff_user, 2, 80, "P-URGENT", priority="urgent").pk
    started = _claimed(routine)  # in progress (or done) when the urgent study was queued
    waiting = set(routine) - started
    assert len(waiting) >= BACKLOG // 2, f"no backlog left to jump: {len(waiting)} routine studies waiting"

    wait_until(lambda: _first_analysed([urgent])[urgent], 300, "the urgent study's analysis", fault_stack)
    wait_until(lambda: all(_first_analysed(routine).values()), 600, "the routine backlog", fault_stack)
    first = _first_analysed([urgent, *routine])

    # Next after the study in progress: no routine study that was still waiting went first.
    jumped = sorted(s for s in waiting if first[s] < first[urgent])
    assert jumped == [], f"routine studies analysed before the urgent one: {jumped}"
    order = sorted(first, key=lambda s: first[s])
    assert order.index(urgent) <= len(started)
    assert Study.objects.get(pk=urgent).priority == Priority.URGENT


def test_a_long_routine_study_gives_way_within_one_batch_and_still_completes(fault_stack, staff_user):
    worker = fault_stack.start_worker(BRAINAI_BATCH_SIZE=1, BRAINAI_FAULT_DECODE_DELAY_S=0.4)
    long = _upload(staff_user, 6, 100, "P-LONG").pk
    wait_until(lambda: Scan.objects.filter(study_id=long, status=ScanStatus.ANALYZED).exists(), 300,
               "the long study's first batch", fault_stack)

    urgent = _upload(staff_user, 1, 120, "P-URG2", priority="urgent").pk
    done_then = Scan.objects.filter(study_id=long, status=ScanStatus.ANALYZED).count()
    later = _upload(staff_user, 1, 121, "P-LATER").pk  # routine, queued after the long one started
    assert done_then < 5, "the long study was nearly done before the urgent one arrived"

    wait_until(lambda: _first_analysed([urgent])[urgent], 300, "the urgent study", fault_stack)
    wait_until(lambda: Scan.objects.filter(study_id=long, status=ScanStatus.ANALYZED).count() == 6, 300,
               "the long study to finish after giving way", fault_stack)
    at = _first_analysed([urgent])[urgent]
    before = Scan.objects.filter(study_id=long, analyzed_at__lt=at).count()
    assert before <= done_then + 1, f"{before - done_then} batches of the long study went before the urgent one"
    paused = PipelineEvent.objects.filter(study_id=long, kind=EventKind.QUEUED, detail__reason="urgent waiting")
    assert paused.exists(), worker.log()[-3000:]
    wait_until(lambda: Study.objects.get(pk=long).report.label, 300, "the long study's finding", fault_stack)
    # It gave way at the head of its lane: it carries on before the routine study queued after it.
    wait_until(lambda: _first_analysed([later])[later], 300, "the later routine study", fault_stack)
    long_last = max(Scan.objects.filter(study_id=long).values_list("analyzed_at", flat=True))
    assert long_last < _first_analysed([later])[later]


def test_research_work_outside_its_hours_is_held_not_analysed_and_not_lost(fault_stack, staff_user, settings):
    hours = _closed_window()
    settings.BRAINAI_RESEARCH_HOURS = hours
    research = _upload(staff_user, 1, 140, "P-RES", priority="research").pk
    assert lane_lengths() == {"urgent": 0, "routine": 0, "research": 0, "detail": 0}  # held: not sent
    assert services.requeue_stalled()["held"] == 1 and lane_lengths()["research"] == 0

    worker = fault_stack.start_worker(BRAINAI_RESEARCH_HOURS=hours)
    # A research message sent while the window was open reaches the worker after it closed.
    assert send_now(ANALYZE_STUDY, research, priority=6)
    routine = _upload(staff_user, 1, 141, "P-RES-ROUTINE").pk  # queued after it, in a higher lane
    wait_until(lambda: PipelineEvent.objects.filter(study_id=research, detail__reason="held").exists(), 300,
               "the worker to hold the research study", fault_stack)
    wait_until(lambda: _first_analysed([routine])[routine], 300, "the routine study", fault_stack)

    assert not Scan.objects.filter(study_id=research).exclude(attempts=0).exists(), worker.log()[-3000:]
    assert Scan.objects.filter(study_id=research, status=ScanStatus.PENDING).count() == 1
    assert Study.objects.get(pk=research).status == "analyzing"  # waiting, not failed, not lost
    # The window opens: the sweep sends it (the worker's clock decides whether it starts).
    opens = timezone.localtime().replace(hour=int(hours[:2]), minute=30)
    assert services.requeue_stalled(now=opens)["analyze"] == 1
    assert lane_lengths()["research"] == 1
