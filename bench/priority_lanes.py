"""How long an urgent study waits behind a routine backlog, through a real worker.

    .venv/bin/python -m bench.priority_lanes [--backlog 20] [--urgent 1] [--mode steps|queues]
                                             [--order round_robin|priority|sorted]

A private stack (bench/_stack.py, under var/bench-lanes/): its own redis-server, SQLite
and one worker like worker-gpu (prefork, one process, consuming the gpu, llm and default
queues). ``--backlog`` routine studies of 1-2 dataset slices each are registered before
the worker starts, so exactly that many wait. Once the worker has claimed its first
study, one urgent study (2 slices; ``--urgent N``: N of them, one after another) and then
one routine study (the control, 2 slices) are uploaded. When every study has an analysed
scan it prints, for the urgent study (the last urgent one too) and the control: how long
it waited (its upload to its first analysed scan, and that in "study turns", the median
gap between consecutive routine studies), its position among all studies by first
analysed scan, how many routine studies were already started when it arrived and how
many still-waiting ones went before it; then one line of JSON.

``--long N --batch-size B``: the first routine study has N slices, analysed B at a time,
and the urgent study is uploaded once its first batch is stored; it prints how many of
its slices were analysed before the urgent study's first (the target: one batch more).

``--mode steps`` is the product: one ``gpu`` queue, a Redis priority step per lane
(scans.services.queue). ``--mode queues`` is the alternative measured against it: one
queue per lane (``gpu.urgent``, ``gpu``, ``gpu.research``) consumed by one worker, with
kombu's queue order ``--order`` (bench/lanes_worker.py). Figures, never pass/fail.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _stack  # noqa: E402

_stack.WORK = _stack.ROOT / "var" / "bench-lanes"
QUEUE_OF = {"urgent": "gpu.urgent", "routine": "gpu", "research": "gpu.research"}


def machine() -> str:
    return f"{os.cpu_count()} CPUs ({_stack.cpu_model()}), load {os.getloadavg()[0]:.1f}"


def start_worker(env: dict, mode: str, order: str) -> Path:
    if mode == "steps":
        return _stack.start_worker(env, queues="gpu,llm,default")
    env = {**env, "BENCH_QUEUE_ORDER": order}
    _stack._start("worker", [_stack.PY, "-m", "celery", "-A", "bench.lanes_worker", "worker", "-Q",
                             "gpu.urgent,gpu,gpu.research,llm,default", "--pool", "prefork", "--concurrency", "1",
                             "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", "bench@%h",
                             "--loglevel", "INFO"], env)
    log = _stack.WORK / "worker.log"
    deadline = time.monotonic() + 120
    while " ready." not in log.read_text(errors="replace"):
        if time.monotonic() > deadline:
            sys.exit(f"worker did not start; see {log}")
        time.sleep(0.2)
    return log


def send_to_lane_queue(study_id: int, priority: str, now=None) -> bool:
    """The "queues" variant's send: one queue per lane, no priority step."""
    from brainai_site.celery import app
    from scans.services.queue import ANALYZE_STUDY

    app.send_task(ANALYZE_STUDY, args=[study_id], queue=QUEUE_OF[str(priority)])
    return True


def upload(user, n: int, start: int, patient: str, priority: str | None = None) -> tuple[int, float]:
    """Register ``n`` dataset slices as one study; (study id, wall time of the upload's start)."""
    from scans import services
    from tests import builders as b

    files = [b.upload(f"b{start + i}.jpg", data) for i, data in enumerate(b.brain_jpegs(n, "glioma", start))]
    at = time.time()
    result = services.register_upload(user, files, {"patient_id": patient}, priority=priority)
    return result.studies[0].pk, at


def first_analysed(ids) -> dict[int, float | None]:
    from scans.models import Scan, ScanStatus

    first: dict[int, float | None] = {i: None for i in ids}
    for study_id, at in Scan.objects.filter(study_id__in=ids, status=ScanStatus.ANALYZED).values_list(
            "study_id", "analyzed_at"):
        stamp = at.timestamp()
        first[study_id] = stamp if first[study_id] is None else min(first[study_id], stamp)
    return first


def analysed_count(study_id: int) -> int:
    from scans.models import Scan, ScanStatus

    return Scan.objects.filter(study_id=study_id, status=ScanStatus.ANALYZED).count()


def analysed_before(study_id: int, stamp: float) -> int:
    """Scans of the study analysed before ``stamp`` (a POSIX time)."""
    from datetime import datetime, timezone

    from scans.models import Scan

    return Scan.objects.filter(study_id=study_id, analyzed_at__lt=datetime.fromtimestamp(stamp, timezone.utc)).count()


def claimed(ids) -> set[int]:
    from scans.models import Scan

    return set(Scan.objects.filter(study_id__in=ids, attempts__gt=0).values_list("study_id", flat=True))


def study_seconds(ids) -> list[float]:
    """Seconds of model work per study (its BATCH events' ``seconds``), where recorded."""
    from scans.models import EventKind, PipelineEvent

    totals: dict[int, float] = {}
    for study_id, detail in PipelineEvent.objects.filter(study_id__in=ids, kind=EventKind.BATCH).values_list(
            "study_id", "detail"):
        totals[study_id] = totals.get(study_id, 0.0) + float(detail.get("seconds") or 0.0)
    return list(totals.values())




def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backlog", type=int, default=20)
    parser.add_argument("--mode", choices=["steps", "queues"], default="steps")
    parser.add_argument("--order", choices=["round_robin", "priority", "sorted"], default="round_robin",
                        help="kombu queue_order_strategy for --mode queues")
    parser.add_argument("--urgent", type=int, default=1, help="urgent studies uploaded one after another")
    parser.add_argument("--long", type=int, default=0,
                        help="the first routine study has this many slices; the urgent study is uploaded once "
                             "its first batch is stored (how many more of its batches go first)")
    parser.add_argument("--batch-size", type=int, default=0, help="the worker's BRAINAI_BATCH_SIZE (0: its default)")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args(argv)

    env = _stack.environment()
    if args.batch_size:
        env["BRAINAI_BATCH_SIZE"] = str(args.batch_size)
    _stack.migrate(env)
    _stack.start_redis(env)
    _stack.activate(env)
    from django.contrib.auth import get_user_model

    from scans.services import priority as lanes
    from tests import builders as b

    if args.mode == "queues":
        lanes.send_analysis = send_to_lane_queue  # the bench process's uploads go to a queue per lane
    user = b.make_user(get_user_model(), "bench-lanes", "staff")
    routine = [upload(user, args.long, 300, "BENCH-LONG")[0]] if args.long else []
    routine += [upload(user, 1 + i % 2, 2 * i, f"BENCH-R{i}")[0] for i in range(args.backlog - len(routine))]
    print(f"{args.backlog} routine studies queued; mode {args.mode}"
          + (f" (queue order {args.order})" if args.mode == "queues" else "") + f"; {machine()}", flush=True)

    log = start_worker(env, args.mode, args.order)
    deadline = time.monotonic() + args.timeout
    while not (analysed_count(routine[0]) if args.long else claimed(routine)):
        if time.monotonic() > deadline:
            sys.exit(f"the worker never started; see {log}")
        time.sleep(0.05)
    long_done = analysed_count(routine[0]) if args.long else 0
    urgents = [upload(user, 2, 200 + 2 * i, f"BENCH-URGENT{i}", "urgent") for i in range(args.urgent)]
    (urgent, urgent_at), (last, last_at) = urgents[0], urgents[-1]
    started = claimed(routine)
    control, control_at = upload(user, 2, 190, "BENCH-CONTROL")
    ids = [*routine, *(u for u, _ in urgents), control]
    while not all(first_analysed(ids).values()):
        if time.monotonic() > deadline:
            sys.exit(f"not every study was analysed in {args.timeout:.0f} s; see {log}")
        time.sleep(0.5)

    first = first_analysed(ids)
    order = sorted(ids, key=lambda s: first[s])
    waiting = [s for s in routine if s not in started]
    # One study's turn on the worker, wall clock: the median gap between consecutive routine
    # studies' first analysed scans (analysis plus the explanation and finalisation the same
    # worker runs in between).
    stamps = sorted(first[s] for s in routine)
    typical = statistics.median(b - a for a, b in zip(stamps, stamps[1:])) if len(stamps) > 1 else None
    model_s = study_seconds(routine)

    def figures(study_id: int, uploaded_at: float) -> dict:
        waited = first[study_id] - uploaded_at
        return {"waited_s": round(waited, 2), "position": order.index(study_id) + 1,
                "routine_started_before": len(started),
                "waiting_routine_ahead": sum(1 for s in waiting if first[s] < first[study_id]),
                "waited_in_studies": round(waited / typical, 2) if typical else None}

    result = {"bench": "priority_lanes", "mode": args.mode, "order": args.order if args.mode == "queues" else None,
              "backlog": args.backlog, "studies": len(ids), "study_turn_s": typical and round(typical, 3),
              "study_model_s": round(statistics.median(model_s), 3) if model_s else None,
              "urgent": figures(urgent, urgent_at), "control": figures(control, control_at),
              "urgent_count": args.urgent, "last_urgent": figures(last, last_at),
              "urgent_positions": [order.index(u) + 1 for u, _ in urgents],
              "long": {"slices": args.long, "batch_size": int(env.get("BRAINAI_BATCH_SIZE", 32)),
                       "analysed_when_urgent_arrived": long_done,
                       "analysed_before_urgent": analysed_before(routine[0], first[urgent])} if args.long else None,
              "nproc": int(subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip() or 0),
              "cpu": _stack.cpu_model(), "load_1min": round(os.getloadavg()[0], 1)}
    for name in ("urgent", "last_urgent", "control") if args.urgent > 1 else ("urgent", "control"):
        f = result[name]
        print(f"{name:8s} waited {f['waited_s']:7.2f} s ({f['waited_in_studies']} study turns), "
              f"analysed {f['position']:2d}th of {len(ids)}; {f['routine_started_before']} routine studies were "
              f"started when it arrived, {f['waiting_routine_ahead']} still-waiting ones went before it")
    if args.urgent > 1:
        print(f"urgent studies analysed at positions {result['urgent_positions']}")
    if args.long:
        long = result["long"]
        print(f"long routine study ({args.long} slices, batches of {long['batch_size']}): "
              f"{long['analysed_when_urgent_arrived']} slices analysed when the urgent study arrived, "
              f"{long['analysed_before_urgent']} before the urgent study's first slice")
    print(f"one study's turn on the worker: {typical and round(typical, 2)} s median "
          f"(model work {result['study_model_s']} s of it, the worker's BATCH events)")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
