"""What one /metrics scrape costs as the tables grow: the collector's queries, timed.

    .venv/bin/python -m bench.metrics [--rows 1000,10000,100000] [--runs 5]
                                      [--database-url postgres://postgres@127.0.0.1:5432/h_metrics]

Seeds a throwaway database (a temp SQLite file, or the PostgreSQL database named; its
tables are emptied first and at the end) with studies of 20 slices each: every slice
analysed with the eight per-stage timings the Analyzer stores, one report per study with
an explanation (one in ten a fallback), a delivery and a notification per study. The rows
are bulk-inserted (seeding 100,000 slices through the services would take hours on this
machine); what is timed is only the collector (brainai_site.metrics), all families
together and each on its own, median of ``--runs`` after one warm-up. The broker is a
closed port, so the queue family costs its refused connection and no more.

Prints a table and, as the last line, JSON. It never passes or fails on time.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench import _stack

ROOT = Path(__file__).resolve().parents[1]
STUDY_SLICES = 20
# What a real row holds besides the timings (the sizes matter: the counts read every row).
PROBABILITIES = {"glioma": 0.91, "meningioma": 0.04, "notumor": 0.03, "pituitary": 0.02}
GUARD = {"in_distribution": True, "score": 0.12, "threshold": 0.5, "energy": -7.3, "mahalanobis": 31.2,
         "checks": {"modality": "ok", "colour": "grey", "size": "ok"}}
REGION = {"peak": {"x": "left", "y": "upper", "frame": "image", "text": "left of the image, upper"},
          "midline": False, "sellar": False, "depth": "deep", "hot_area_fraction": 0.06, "hot_spots": 1,
          "frame": "image"}


def _setup(database_url: str) -> None:
    os.environ.update({"DJANGO_SETTINGS_MODULE": "brainai_site.settings", "DATABASE_URL": database_url,
                       "REDIS_URL": "redis://127.0.0.1:9/0", "BRAINAI_LLM_PROVIDER": "template",
                       "BRAINAI_VAR_DIR": tempfile.mkdtemp(prefix="brainai-bench-metrics-")})
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, skip_checks=True)


def _empty() -> None:
    from scans.models import Destination, NotificationTarget, Patient, Study

    Study.objects.all().delete()
    Patient.objects.all().delete()
    Destination.objects.all().delete()
    NotificationTarget.objects.all().delete()


def _seed(slices: int, start: int) -> None:
    """Add studies until there are ``slices`` analysed slices (``start`` already there)."""
    import random

    from django.db import transaction

    from scans.models import (Analysis, Delivery, Destination, Notification, NotificationTarget, Patient, Report,
                              Scan, Series, Study)

    rng = random.Random(start)
    dest, _ = Destination.objects.get_or_create(name="pacs", defaults={"ae_title": "PACS", "host": "127.0.0.1",
                                                                      "port": 104})
    target, _ = NotificationTarget.objects.get_or_create(name="hook", defaults={"url": "http://127.0.0.1:9/"})
    stages = ("preprocess", "model", "guard", "maps", "saliency", "region", "faithfulness")
    patient, _ = Patient.objects.get_or_create(patient_id="BENCH-1")
    for first in range(start, slices, STUDY_SLICES):
        with transaction.atomic():
            n = first // STUDY_SLICES
            study = Study.objects.create(patient=patient, study_instance_uid=f"2.25.{n + 1}", status="awaiting_review",
                                         priority=("routine", "urgent", "research")[n % 3])
            series = Series.objects.create(study=study, series_instance_uid=f"2.25.{n + 1}.1")
            scans = Scan.objects.bulk_create(
                Scan(study=study, series=series, source=f"sources/{i}.png", sha256=f"{i:064x}", status="analyzed")
                for i in range(first, min(first + STUDY_SLICES, slices)))
            rows = []
            for scan in scans:
                timings = {s: rng.uniform(0.0005, 0.05) for s in stages}
                timings["total"] = sum(timings.values())
                rows.append(Analysis(scan=scan, model_name="cnn", model_version="bench", label="glioma",
                                     probabilities=PROBABILITIES, confidence=0.9, guard=GUARD, region=REGION,
                                     in_distribution=rng.random() > 0.05, timings=timings,
                                     heatmap=f"heatmaps/{scan.pk % 1000:03d}/{scan.pk}.png",
                                     overlay=f"overlays/{scan.pk % 1000:03d}/{scan.pk}.png"))
            Analysis.objects.bulk_create(rows)
            fallback = "timeout: gemini (gemini-x) gave no answer within 20 s" if n % 10 == 0 else ""
            report = Report.objects.create(study=study, status="awaiting_review", label="glioma",
                                           explanation_provider="template" if fallback else "gemini",
                                           explanation_latency_ms=rng.randint(50, 20000),
                                           explanation_fallback_reason=fallback)
            Delivery.objects.create(report=report, destination=dest, verified=False, status="sent",
                                    sr_series_uid="2.25.9", sr_sop_instance_uid=f"2.25.9.{n}", attempts=1)
            Notification.objects.create(target=target, study=study, event="awaiting_review", report_version=1,
                                        status="sent")


def _median_ms(fn, runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="1000,10000,100000", help="analysed slices, comma-separated steps")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--database-url", default=None, help="default: a temp SQLite file")
    args = parser.parse_args(argv)
    steps = sorted(int(x) for x in args.rows.split(","))
    _setup(args.database_url or f"sqlite:///{tempfile.mkdtemp(prefix='brainai-bench-metrics-')}/bench.sqlite3")

    from django.db import connection
    from prometheus_client import generate_latest

    from brainai_site import metrics

    collector = metrics.BrainAICollector()
    parts = {"studies": collector._studies, "scans": collector._scans, "queue": collector._queue,
             "analysis": collector._analysis, "analysis_counts": collector._analysis_counts, "llm": collector._llm,
             "notifications": collector._notifications, "sends": collector._sends}
    _empty()
    results, done = [], 0
    try:
        for rows in steps:
            seed_start = time.perf_counter()
            _seed(rows, done)
            done = rows
            seed_s = time.perf_counter() - seed_start
            result = {"slices": rows, "seed_s": round(seed_s, 1),
                      "scrape_ms": round(_median_ms(lambda: generate_latest(metrics.registry), args.runs), 1),
                      "bytes": len(generate_latest(metrics.registry))}
            for name, part in parts.items():
                result[f"{name}_ms"] = round(_median_ms(lambda part=part: list(part()), args.runs), 1)
            results.append(result)
            print(f"{rows:>8} slices: scrape {result['scrape_ms']:8.1f} ms median ({result['bytes']} bytes); "
                  + ", ".join(f"{k[:-3]} {v:.1f}" for k, v in result.items() if k.endswith("_ms") and k != "scrape_ms"),
                  flush=True)
    finally:
        _empty()
    summary = {"bench": "metrics", "database": connection.vendor, "runs": args.runs, "nproc": os.cpu_count(),
               "cpu": _stack.cpu_model(), "python": platform.python_version(), "results": results}
    print(json.dumps(summary))
    return summary




if __name__ == "__main__":
    main()
