"""How fast the portal serves its pages: median time per page with Django's test client.

    .venv/bin/python bench/pages.py [--slices 24] [--reports 12] [--runs 40]

Seeds a throwaway SQLite database and media folder (in a temp dir) the way production
fills them, with the tests' builders (tests/builders.py): MRI JPEGs (the dataset's, else
phantoms) through ``scans.services`` (register_upload, record_analyses, complete_analysis,
record_explanation, finalize_report), with Grad-CAM/saliency PNGs drawn by
ml.explain.overlay. Then it
requests each page ``--runs`` times as a signed-in radiologist after warming up, and
prints a table and, as the last line, JSON. The figure that matters is the report page's
median (target: under 100 ms on the 2-core reference machine). Times include the whole
request (middleware, session, queries, template rendering, and, for the report page, the
audit event it writes); images are separate requests and are not counted.

This prints figures; it never passes or fails on time.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_redis(workdir: str):
    """A private redis-server, so queued tasks are accepted at once (no worker consumes them).

    Without one, every enqueue would wait for the broker's retries to run out.
    """
    binary = shutil.which("redis-server") or str(Path(sys.executable).parent / "redis-server")
    port = _free_port()
    if not os.access(binary, os.X_OK):
        return None, "redis://127.0.0.1:9/0"
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", workdir, "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return proc, f"redis://127.0.0.1:{port}/0"


def _setup(workdir: str, redis_url: str) -> None:
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "brainai_site.settings",
        "DATABASE_URL": f"sqlite:///{workdir}/bench.sqlite3",
        "BRAINAI_MEDIA_ROOT": f"{workdir}/media",
        "BRAINAI_VAR_DIR": f"{workdir}/var",
        "REDIS_URL": redis_url,
        "BRAINAI_LLM_PROVIDER": "template",
        "DJANGO_DEBUG": "false",
        "LOG_LEVEL": "WARNING",
    })
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, skip_checks=True)


def _seed(n_slices: int, n_reports: int):
    """A radiologist, one report with ``n_slices`` slices, and ``n_reports`` more for the worklist."""
    from django.contrib.auth import get_user_model

    from tests import builders as b

    users = get_user_model()
    staff = b.make_user(users, "bench-staff", "staff")
    radiologist = b.make_user(users, "bench-rad", "radiologist")
    confidences = [0.55 + 0.45 * ((i * 37) % 100) / 100 for i in range(n_slices)]
    big = b.ready_report(staff, n_slices, mri_class="glioma",
                         results=[b.slice_result("glioma", confidence=c) for c in confidences],
                         patient_id="BENCH-0001", patient_name="Bench Patient")
    classes = ("meningioma", "notumor", "pituitary")
    for i in range(n_reports):
        cls = classes[i % 3]
        label = cls if i % 4 else "notumor"
        b.ready_report(staff, 1, mri_class=cls, seed=i // 3,
                       results=[b.slice_result(label, confidence=0.6 + 0.03 * (i % 12))],
                       patient_id=f"BENCH-{i + 2:04d}", patient_name=f"Patient {i + 2}")
    return radiologist, big


def _measure(client, url: str, runs: int, warmup: int = 3) -> dict:
    from django.db import connection

    for _ in range(warmup):
        assert client.get(url).status_code == 200, url
    queries = []

    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        response = client.get(url)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200, url
    times.sort()
    return {"median_ms": round(statistics.median(times), 2), "p90_ms": round(times[int(0.9 * (len(times) - 1))], 2),
            "min_ms": round(times[0], 2), "queries": len(queries), "bytes": len(response.content)}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slices", type=int, default=24, help="slices in the measured report (default 24)")
    parser.add_argument("--reports", type=int, default=12, help="further reports on the worklist (default 12)")
    parser.add_argument("--runs", type=int, default=40, help="timed requests per page (default 40)")
    args = parser.parse_args(argv)

    workdir = tempfile.mkdtemp(prefix="brainai-bench-pages-")
    redis, redis_url = _start_redis(workdir)
    try:
        _setup(workdir, redis_url)
        t0 = time.perf_counter()
        radiologist, report = _seed(args.slices, args.reports)
        seed_s = time.perf_counter() - t0

        from django.test import Client
        from django.urls import reverse

        client = Client()
        client.force_login(radiologist)
        pages = {
            "worklist": reverse("scans:worklist"),
            "upload": reverse("scans:upload"),
            "study": reverse("scans:study", args=[report.study_id]),
            "study progress (JSON)": reverse("scans:study-progress", args=[report.study_id]),
            "report": reverse("scans:report", args=[report.pk]),
            "report print": reverse("scans:report-print", args=[report.pk]),
        }
        results = {name: _measure(client, url, args.runs) for name, url in pages.items()}
    finally:
        if redis is not None:
            redis.terminate()
            redis.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"Portal pages, Django test client, {args.runs} runs each after 3 warm-up requests; "
          f"report with {args.slices} slices, worklist of {args.reports + 1} reports (seeded in {seed_s:.1f} s)")
    print(f"{'page':<24}{'median ms':>11}{'p90 ms':>9}{'min ms':>9}{'queries':>9}{'KiB':>8}")
    for name, r in results.items():
        print(f"{name:<24}{r['median_ms']:>11.1f}{r['p90_ms']:>9.1f}{r['min_ms']:>9.1f}{r['queries']:>9}"
              f"{r['bytes'] / 1024:>8.1f}")
    summary = {
        "bench": "pages", "client": "django.test.Client", "runs": args.runs, "slices": args.slices,
        "worklist_reports": args.reports + 1, "report_median_ms": results["report"]["median_ms"],
        "target_report_median_ms": 100, "cpus": os.cpu_count(), "pages": results,
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
