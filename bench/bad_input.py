"""What the bad-input corpus costs the web process: memory and time per upload request.

    .venv/bin/python -m bench.bad_input [--json]

Seeds a throwaway SQLite database and media folder (bench/pages.py's set-up, with its
private redis-server) and posts each case of tests/bad_input.py to the real upload API
(/api/v1/uploads/) as a signed-in clinic user, one request a case. For each request it
prints the HTTP status, the files stored and refused, the wall time and the Python heap
peak (tracemalloc: numpy buffers and bytes objects included; Pillow's and the JPEG 2000
decoder's own C buffers are not) and the process's peak RSS so far (``ru_maxrss``; the
corpus is built in a child process, so its bombs are not counted). At the end it prints
the peak RSS before the first and after the last case, and, as the last line, JSON.

This prints figures; it never passes or fails on time. tests/scans/test_bad_input.py runs
it and bounds the memory.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import shutil
import tempfile
import time
import tracemalloc
from concurrent.futures import ProcessPoolExecutor

from bench.pages import _setup, _start_redis


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _measure(client, case) -> dict:
    from django.core.files.uploadedfile import SimpleUploadedFile

    files = [SimpleUploadedFile(name, data) for name, data in case.files]
    tracemalloc.start()
    t0 = time.perf_counter()
    response = client.post("/api/v1/uploads/", {"files": files, **case.fields}, format="multipart")
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    body = response.json() if response.status_code == 202 else {}
    return {"case": case.key, "status": response.status_code,
            "upload_kib": round(sum(len(d) for _, d in case.files) / 1024),
            "accepted": body.get("accepted", 0), "rejected": len(body.get("rejected", [])),
            "seconds": round(seconds, 3), "heap_peak_mib": round(peak / 2**20, 2), "rss_peak_mib": round(_rss_mib())}


def _build_corpus():
    from tests import bad_input

    return bad_input.corpus()


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args(argv)

    # Built in a child process: making the bombs takes memory that must not count here.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        cases = pool.submit(_build_corpus).result()
    workdir = tempfile.mkdtemp(prefix="brainai-bench-bad-input-")
    redis, redis_url = _start_redis(workdir)
    try:
        _setup(workdir, redis_url)
        from django.contrib.auth import get_user_model
        from django.core.files.uploadedfile import SimpleUploadedFile
        from rest_framework.test import APIClient

        from tests import builders as b

        client = APIClient()
        client.force_login(b.make_user(get_user_model(), "bench-staff", "staff"))
        # One ordinary upload first, so imports and first-use caches are not charged to a case.
        client.post("/api/v1/uploads/", {"files": [SimpleUploadedFile("warm.png", b.png_bytes(seed=99))],
                                         "patient_id": "BENCH-WARM"}, format="multipart")
        rss_before = _rss_mib()
        rows = [_measure(client, case) for case in cases]
        rss_after = _rss_mib()
    finally:
        if redis:
            redis.terminate()
        shutil.rmtree(workdir, ignore_errors=True)

    result = {"cases": rows, "status_5xx": sum(r["status"] >= 500 for r in rows),
              "rss_before_mib": round(rss_before, 1), "rss_after_mib": round(rss_after, 1),
              "rss_growth_mib": round(rss_after - rss_before, 1)}
    if not args.json:
        print(f"{'case':16s} {'HTTP':>4s} {'KiB in':>7s} {'stored':>6s} {'refused':>7s} {'s':>6s} {'heap MiB':>8s} "
              f"{'RSS peak':>8s}")
        for r in rows:
            print(f"{r['case']:16s} {r['status']:>4d} {r['upload_kib']:>7d} {r['accepted']:>6d} {r['rejected']:>7d} "
                  f"{r['seconds']:>6.2f} {r['heap_peak_mib']:>8.2f} {r['rss_peak_mib']:>8d}")
        print(f"peak RSS: {rss_before:.0f} MiB before the corpus, {rss_after:.0f} MiB after "
              f"(+{rss_after - rss_before:.0f} MiB)")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
