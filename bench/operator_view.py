"""How long the operator's view takes: the queue read, the page and its JSON twin.

    .venv/bin/python -m bench.operator_view [--studies 200] [--failed 50] [--runs 20]

Seeds a throwaway SQLite database (tests/builders.py through ``scans.services``, as
bench/pages.py does) with ``--studies`` studies in flight (one slice each, one batch
claimed, so each has a worker and events) and ``--failed`` failed ones, and a private
redis-server with no worker. Then it times ``selectors.operator_queue()`` (the SQL: one
query with correlated subqueries), the page (``/operator/``) and ``/api/v1/operator/queue/``
with the broker up (the worker ping waits its whole 1 s timeout when no worker answers,
which is the floor of the page's time) and with the broker down (a dead port).

Prints a table and, as the last line, JSON. Never passes or fails on time.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time

from bench import _stack
from bench.pages import _setup, _start_redis




def _seed(n_flight: int, n_failed: int):
    from django.contrib.auth import get_user_model

    from scans import services
    from tests import builders as b

    users = get_user_model()
    staff = b.make_user(users, "bench-staff", "staff")
    operator = b.make_user(users, "bench-op", "operator")
    for i in range(n_flight):
        study = b.upload_study(staff, 1, seed=1000 + i, patient_id=f"BENCH-{i:05d}")
        services.claim_batch(study.pk, 1, 3, worker=f"gpu-{i % 4}@bench")
    for i in range(n_failed):
        study = b.upload_study(staff, 1, seed=50_000 + i, patient_id=f"BENCH-F{i:05d}")
        for scan in services.claim_batch(study.pk, 1, 3, worker="gpu-0@bench"):
            services.record_scan_error(scan.pk, "the model could not analyse this image: bench", final=True)
        services.complete_analysis(study.pk)
    return operator


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--studies", type=int, default=200, help="studies in flight (default 200)")
    parser.add_argument("--failed", type=int, default=50, help="failed studies (default 50)")
    parser.add_argument("--runs", type=int, default=20, help="timed calls each (default 20)")
    args = parser.parse_args(argv)

    workdir = tempfile.mkdtemp(prefix="brainai-bench-operator-")
    redis, redis_url = _start_redis(workdir)
    try:
        _setup(workdir, redis_url)
        t0 = time.perf_counter()
        operator = _seed(args.studies, args.failed)
        seed_s = time.perf_counter() - t0

        from django.db import connection
        from django.test import Client

        from scans import selectors
        from tests.broker import broker_at, free_port

        queries = []
        with connection.execute_wrapper(lambda ex, sql, *a: queries.append(sql) or ex(sql, *a)):
            rows = selectors.operator_queue()
        assert len(rows) == args.studies + args.failed, len(rows)
        client = Client()
        client.force_login(operator)
        runs_page = max(args.runs // 4, 3)  # each waits the 1 s ping
        results = {
            "operator_queue() (SQL)": {**_stack.time_calls(selectors.operator_queue, args.runs, warmup=2, digits=1), "queries": len(queries)},
            "/operator/ broker up": _stack.time_calls(lambda: client.get("/operator/"), runs_page, warmup=2, digits=1),
            "/api/v1/operator/queue/ broker up": _stack.time_calls(lambda: client.get("/api/v1/operator/queue/"), runs_page, warmup=2, digits=1),
        }
        with broker_at(f"redis://127.0.0.1:{free_port()}/0"):
            results["/operator/ broker down"] = _stack.time_calls(lambda: client.get("/operator/"), runs_page, warmup=2, digits=1)
    finally:
        if redis is not None:
            redis.terminate()
            redis.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)

    machine = f"{os.cpu_count()} CPUs, {_stack.cpu_model()}"
    print(f"Operator's view, {args.studies} studies in flight + {args.failed} failed, SQLite, no worker "
          f"(seeded in {seed_s:.1f} s); {machine}")
    print(f"{'what':<38}{'median ms':>11}{'p90 ms':>9}")
    for name, r in results.items():
        print(f"{name:<38}{r['median_ms']:>11.1f}{r['p90_ms']:>9.1f}")
    summary = {"bench": "operator_view", "studies": args.studies, "failed": args.failed, "machine": machine,
               "results": results}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
