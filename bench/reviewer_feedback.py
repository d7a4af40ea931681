"""How long the reviewer analytics and the corrections export take on a seeded database.

    .venv/bin/python bench/reviewer_feedback.py [--reports 200] [--slices 2] [--runs 20]

Seeds a throwaway SQLite database and media folder (bench/pages.py's set-up) with
``--reports`` signed reports through ``scans.services`` and the tests' builders (phantom
slices, ``--slices`` each; a quarter "disagree", three eighths agree, the rest not
assessable or not recorded, over two model versions), then times:

- ``reviewer_analytics`` (the aggregation alone), the ``/analytics/`` page and
  ``GET /api/v1/analytics/`` (Django's test client, a signed-in radiologist; each view
  writes its audit row): median and p90 of ``--runs``;
- ``export_corrections`` into a fresh folder: seconds and slices per second (decode the
  stored original, re-encode the PNG, write it and the manifest).

Prints a table and, as the last line, JSON. This prints figures; it never passes or fails on time.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import _stack  # noqa: E402
from bench.pages import _setup, _start_redis  # noqa: E402 - the same throwaway stack as the pages bench


def _seed(n_reports: int, n_slices: int):
    from django.contrib.auth import get_user_model

    from scans import services
    from scans.models import Report
    from tests import builders as b

    users = get_user_model()
    staff = b.make_user(users, "bench-staff", "staff")
    radiologist = b.make_user(users, "bench-rad", "radiologist")
    ai_labels = ("glioma", "meningioma", "notumor", "pituitary")
    for i in range(n_reports):
        ai = ai_labels[i % 4]
        report = b.ready_report(staff, n_slices, seed=1000 + i * n_slices,
                                results=[b.slice_result(ai, confidence=0.5 + 0.5 * ((i * 37) % 100) / 100)] * n_slices,
                                patient_id=f"BENCH-{i:05d}")
        if i % 2:
            Report.objects.filter(pk=report.pk).update(model_version="bench-v2")
            report.refresh_from_db()
        kind = i % 8
        if kind in (0, 5):  # a label other than the AI's, varied
            verdict, label = "disagree", ai_labels[(i % 4 + 1 + (i // 8) % 3) % 4]
        elif kind in (1, 2, 4):
            verdict, label = "agree", ""
        elif kind == 3:
            verdict, label = "not_assessable", ""
        else:
            verdict, label = "", ""
        services.sign_report(report, radiologist, verdict=verdict, verdict_label=label)
    return radiologist


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", type=int, default=200, help="signed reports to seed (default 200)")
    parser.add_argument("--slices", type=int, default=2, help="slices per report (default 2)")
    parser.add_argument("--runs", type=int, default=20, help="timed calls per figure (default 20)")
    args = parser.parse_args(argv)

    workdir = tempfile.mkdtemp(prefix="brainai-bench-feedback-")
    redis, redis_url = _start_redis(workdir)
    try:
        _setup(workdir, redis_url)
        t0 = time.perf_counter()
        radiologist = _seed(args.reports, args.slices)
        seed_s = time.perf_counter() - t0

        from django.test import Client

        from scans.services.analytics import reviewer_analytics
        from scans.services.corrections import export_corrections

        client = Client()
        client.force_login(radiologist)
        figures = reviewer_analytics()
        results = {
            "reviewer_analytics()": _stack.time_calls(reviewer_analytics, args.runs),
            "/analytics/ page": _stack.time_calls(lambda: client.get("/analytics/"), args.runs),
            "GET /api/v1/analytics/": _stack.time_calls(lambda: client.get("/api/v1/analytics/"), args.runs),
        }
        t0 = time.perf_counter()
        exported = export_corrections(Path(workdir) / "corrections", dt.date(2000, 1, 1))
        export_s = time.perf_counter() - t0
    finally:
        if redis is not None:
            redis.terminate()
            redis.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)

    cpu = f"{os.cpu_count()} x {_stack.cpu_model()}"
    print(f"Reviewer analytics and corrections export; {args.reports} signed reports of {args.slices} slices "
          f"({figures['n']} counted, {len(figures['models'])} model versions), seeded in {seed_s:.1f} s; "
          f"{args.runs} runs each after a warm-up; {cpu}")
    print(f"{'what':<26}{'median ms':>11}{'p90 ms':>9}")
    for name, r in results.items():
        print(f"{name:<26}{r['median_ms']:>11.1f}{r['p90_ms']:>9.1f}")
    rate = exported.slices / export_s if export_s else 0.0
    print(f"export_corrections: {exported.slices} slices of {exported.reports} reports in {export_s:.2f} s "
          f"({rate:.0f} slices/s)")
    summary = {"bench": "reviewer_feedback", "reports": args.reports, "slices_per_report": args.slices,
               "runs": args.runs, "cpus": os.cpu_count(), "cpu": _stack.cpu_model(), "timings": results,
               "export": {"slices": exported.slices, "reports": exported.reports, "seconds": round(export_s, 3),
                          "slices_per_s": round(rate, 1)}}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
