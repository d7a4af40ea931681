"""Load on the running service (`make run`), over HTTP on loopback: `python -m bench.service`.

1. Bulk upload: N real dataset slices (default 500, the four classes in turn, from
   BRAINAI_DATA_DIR or ../shared/datasets/brain-tumor-mri/Training) through
   POST /api/v1/uploads/ in batches (one study each), then wait until every study is
   final. Scans per minute from the first request to the last final study; *lost* (a
   distinct file sent that is not a scan in a final state) and *duplicated* (scans beyond
   the distinct files sent) counted from what the API reports.
2. Reads: GET /api/v1/reports/ and /api/v1/reports/{id}/ (a report of the bulk upload)
   from C concurrent clients (threads, one httpx client each): requests/s, p50, p95.

Without --url it starts scripts/run.py (what `make run` runs) on a private
BRAINAI_VAR_DIR (var/bench-service/, fresh each run) with free ports, signs in as its
admin, and stops it at the end. With --url it drives a service already running
(--user/--password). Prints a table, then one JSON line. Nothing passes or fails on time.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench._stack import PY, ROOT, free_port
from ml.data.dataset import default_data_dir
from ml.labels import CLASSES, NOT_BRAIN_MRI

FINAL = {"awaiting_review", "signed", "failed"}
FINAL_SCAN = ("analyzed", "failed", "skipped")


def start_service(var_dir: Path, api_rate: str) -> tuple[subprocess.Popen, str]:
    """scripts/run.py on free ports and a fresh var_dir; returns (process, base URL)."""
    if var_dir.exists():
        shutil.rmtree(var_dir)
    var_dir.mkdir(parents=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "BRAINAI_MEDIA_ROOT")}
    env.update({"BRAINAI_VAR_DIR": str(var_dir), "PORT": str(port), "BRAINAI_REDIS_PORT": str(free_port()),
                "BRAINAI_LLM_PROVIDER": os.environ.get("BENCH_LLM_PROVIDER", "template"),
                "BRAINAI_API_RATE_USER": api_rate, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if "BENCH_DATABASE_URL" in os.environ:
        env["DATABASE_URL"] = os.environ["BENCH_DATABASE_URL"]
    log = open(var_dir / "run.log", "wb")
    # Its own process group: stopping it stops the worker, web server and Redis it started.
    proc = subprocess.Popen([PY, "scripts/run.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{base}/healthz", timeout=5).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(1)
    stop_service(proc)
    sys.exit(f"the service did not come up; see {var_dir / 'run.log'}")


def stop_service(proc: subprocess.Popen) -> None:
    """Ctrl-C to scripts/run.py (it stops what it started), then the group if it lingers."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            pass
    try:  # what run.py left behind in its group (a pool child of a worker it had to kill)
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def dataset_files(n: int, start: int) -> list[Path]:
    """``n`` JPEGs, the four tumour classes in turn, from the ``start``-th of each in name order."""
    folders = [sorted((default_data_dir() / label).glob("*.jpg")) for label in CLASSES if label != NOT_BRAIN_MRI]
    files = [f[start + i // len(folders)] for i in range(n) for f in [folders[i % len(folders)]]]
    if len(files) < n or not all(p.is_file() for p in files):
        sys.exit(f"not enough dataset slices under {default_data_dir()} (set BRAINAI_DATA_DIR)")
    return files


def bulk_upload(client: httpx.Client, files: list[Path], batch: int, model: str, timeout_s: float) -> dict:
    """Upload in batches of ``batch`` (one study each), poll until all final; count lost and duplicated."""
    distinct = {hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    study_ids: set[int] = set()
    rejected: list[dict] = []
    start = time.perf_counter()
    for i in range(0, len(files), batch):
        chunk = files[i:i + batch]
        parts = [("files", (p.name, p.read_bytes(), "image/jpeg")) for p in chunk]
        data = {"patient_id": f"LOAD-{i // batch:03d}", "study_description": "load bench"}
        if model:
            data["model"] = model
        answer = client.post("/api/v1/uploads/", files=parts, data=data, timeout=300)
        answer.raise_for_status()
        body = answer.json()
        study_ids.update(s["id"] for s in body["studies"])
        rejected.extend(body["rejected"])
    uploaded_s = time.perf_counter() - start
    studies = _wait_final(client, study_ids, start, timeout_s)
    total_s = time.perf_counter() - start
    scans = [s for study in studies.values() for s in study["scans"]]
    final = [s for s in scans if s["status"] in FINAL_SCAN]
    return {
        "files_sent": len(files), "distinct_files": len(distinct), "batch": batch, "studies": len(study_ids),
        "rejected": len(rejected), "scans": len(scans),
        "scans_by_status": {k: sum(s["status"] == k for s in scans) for k in sorted({s["status"] for s in scans})},
        "studies_by_status": {k: sum(s["status"] == k for s in studies.values())
                              for k in sorted({s["status"] for s in studies.values()})},
        "lost": max(0, len(distinct) - len(final)), "duplicated": max(0, len(scans) - len(distinct)),
        "upload_s": round(uploaded_s, 1), "end_to_end_s": round(total_s, 1),
        "scans_per_min": round(60 * len(final) / total_s, 1),
        "report_ids": [s["report"]["id"] for s in studies.values() if s.get("report")],
    }


def _wait_final(client: httpx.Client, study_ids: set[int], start: float, timeout_s: float) -> dict[int, dict]:
    done: dict[int, dict] = {}
    while len(done) < len(study_ids) and time.perf_counter() - start < timeout_s:
        for sid in sorted(study_ids - done.keys()):
            body = client.get(f"/api/v1/studies/{sid}/").raise_for_status().json()
            if body["status"] in FINAL:
                done[sid] = body
        time.sleep(2)
    for sid in study_ids - done.keys():  # timed out: what it is now, so the count says lost
        done[sid] = client.get(f"/api/v1/studies/{sid}/").raise_for_status().json()
    return done


def wait_idle(client: httpx.Client, timeout_s: float = 600) -> int:
    """Wait until /healthz shows no queued task (the detail passes run after the studies are
    final), so the reads do not share the CPU with the worker; returns the tasks still queued."""
    deadline = time.monotonic() + timeout_s
    while True:
        queued = sum(client.get("/healthz").json()["broker"]["queued"].values())
        if queued == 0 or time.monotonic() > deadline:
            time.sleep(5 if queued == 0 else 0)  # the last task taken is still running
            return queued
        time.sleep(2)


def read_load(base: str, token: str, path: str, clients: int, per_client: int) -> dict:
    """``clients`` threads, each with its own connection, GET ``path`` ``per_client`` times."""
    times: list[float] = []
    codes: dict[int, int] = {}
    lock = threading.Lock()

    def one_client() -> None:
        with httpx.Client(base_url=base, headers={"Authorization": f"Token {token}"}, timeout=60) as c:
            for _ in range(per_client):
                t0 = time.perf_counter()
                code = c.get(path).status_code
                ms = 1000 * (time.perf_counter() - t0)
                with lock:
                    times.append(ms)
                    codes[code] = codes.get(code, 0) + 1

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(one_client) for _ in range(clients)]:
            future.result()
    wall = time.perf_counter() - start
    times.sort()
    return {"clients": clients, "requests": len(times), "status": codes, "rps": round(len(times) / wall, 1),
            "p50_ms": round(statistics.median(times), 1), "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1)}


def machine() -> dict:
    """nproc, the CPU model (lscpu) and the load average (others' work on the cores), for the record."""
    model = platform.processor()
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "load_avg_1m": round(os.getloadavg()[0], 1)}


def print_table(result: dict) -> None:
    up = result["bulk_upload"]
    print(f"bulk upload: {up['files_sent']} files ({up['distinct_files']} distinct) in {up['studies']} studies "
          f"of {up['batch']}, model {result['model'] or 'default'}")
    print(f"  uploaded in {up['upload_s']} s; all final in {up['end_to_end_s']} s: {up['scans_per_min']} scans/min")
    print(f"  scans {up['scans_by_status']}, studies {up['studies_by_status']}, rejected {up['rejected']}")
    print(f"  lost {up['lost']}, duplicated {up['duplicated']}")
    print(f"{'endpoint':<16}{'clients':>8}{'requests':>10}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}  status")
    for name in ("report_list", "report_detail"):
        r = result[name]
        print(f"{name:<16}{r['clients']:>8}{r['requests']:>10}{r['rps']:>8}{r['p50_ms']:>9}{r['p95_ms']:>9}"
              f"  {r['status']}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="a service already running (else scripts/run.py is started)")
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", help="with --url (else the started service's var/admin-password.txt)")
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--batch", type=int, default=25, help="images per upload request (one study)")
    parser.add_argument("--start", type=int, default=0, help="first slice of each class folder")
    parser.add_argument("--model", default="cnn", help="upload field `model` ('' = the service's default)")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=20, help="requests per client per endpoint")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait for the studies")
    args = parser.parse_args(argv)
    files = dataset_files(args.images, args.start)
    proc = None
    if args.url:
        base, password = args.url.rstrip("/"), args.password or sys.exit("--url needs --password")
    else:
        var_dir = ROOT / "var" / "bench-service"
        proc, base = start_service(var_dir, api_rate="1000000/min")
        password = (var_dir / "admin-password.txt").read_text().strip()
    try:
        token = httpx.post(f"{base}/api/v1/auth/token/", data={"username": args.user, "password": password},
                           timeout=30).raise_for_status().json()["token"]
        with httpx.Client(base_url=base, headers={"Authorization": f"Token {token}"}, timeout=60) as client:
            bulk = bulk_upload(client, files, args.batch, args.model, args.timeout)
            bulk["queued_before_reads"] = wait_idle(client)
        report_ids = bulk.pop("report_ids")
        result = {"machine": machine(), "service": "scripts/run.py" if proc else base, "model": args.model,
                  "bulk_upload": bulk,
                  "report_list": read_load(base, token, "/api/v1/reports/", args.clients, args.requests),
                  "report_detail": read_load(base, token, f"/api/v1/reports/{report_ids[0]}/", args.clients,
                                             args.requests)}
    finally:
        if proc is not None:
            stop_service(proc)
    print_table(result)
    print(json.dumps({"bench": "service", **result}))


if __name__ == "__main__":
    main()
