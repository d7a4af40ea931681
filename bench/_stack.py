"""A private BrainAI stack for the benchmarks: SQLite (or BENCH_DATABASE_URL), its own
redis-server, a Celery worker like worker-gpu (prefork pool, one process), and optionally
gunicorn. Everything lives under var/bench/ and is stopped at exit.

Not a test fixture: the benchmarks print figures and never pass or fail on time.
"""
from __future__ import annotations

import atexit
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "var" / "bench"
PY = sys.executable
_procs: list[subprocess.Popen] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environment(fresh: bool = True) -> dict:
    if fresh and WORK.exists():
        shutil.rmtree(WORK)
    WORK.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update({
        "DJANGO_SETTINGS_MODULE": "brainai_site.settings",
        "BRAINAI_VAR_DIR": str(WORK),
        "BRAINAI_MEDIA_ROOT": str(WORK / "media"),
        "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL", f"sqlite:///{WORK / 'bench.sqlite3'}"),
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "BRAINAI_LLM_PROVIDER": os.environ.get("BENCH_LLM_PROVIDER", "template"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONUNBUFFERED": "1",
    })
    return env


def activate(env: dict) -> None:
    """Use the bench environment in this process too (before django.setup())."""
    os.environ.update(env)
    import django

    django.setup()


def _start(name: str, args: list[str], env: dict) -> subprocess.Popen:
    log = open(WORK / f"{name}.log", "wb")
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    _procs.append(proc)
    return proc


def wait_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 60) -> None:
    """Return once something listens on 127.0.0.1:port; exit naming ``what`` if ``proc`` dies or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        if proc.poll() is not None:
            sys.exit(f"{what} exited with code {proc.returncode}; see {WORK}")
        if time.monotonic() > deadline:
            sys.exit(f"{what} did not listen on port {port}; see {WORK}")
        time.sleep(0.1)


def migrate(env: dict) -> None:
    subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v0", "--skip-checks"], cwd=ROOT, env=env, check=True)


def start_redis(env: dict) -> None:
    binary = shutil.which("redis-server") or str(Path(PY).parent / "redis-server")
    port = int(env["REDIS_URL"].rsplit(":", 1)[1].split("/")[0])
    proc = _start("redis", [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(WORK),
                            "--save", "", "--appendonly", "no"], env)
    wait_port(port, proc, "redis-server")


def start_stack() -> tuple[dict, Path]:
    """The whole private stack for a bench: a fresh WORK folder, a migrated database, its own
    redis-server and one worker, with this process's Django pointed at them.

    Returns:
        The environment (DATABASE_URL, REDIS_URL ...) and the worker's log file.
    """
    env = environment()
    migrate(env)
    start_redis(env)
    log = start_worker(env)
    activate(env)
    return env, log


def start_worker(env: dict, queues: str = "gpu,llm,default") -> Path:
    _start("worker", [PY, "-m", "celery", "-A", "brainai_site", "worker", "-Q", queues,
                      "--pool", "prefork", "--concurrency", "1", "--without-gossip", "--without-mingle",
                      "--without-heartbeat", "-n", "bench@%h", "--loglevel", "INFO"], env)
    log = WORK / "worker.log"
    deadline = time.monotonic() + 120
    while " ready." not in log.read_text(errors="replace"):
        if time.monotonic() > deadline:
            sys.exit(f"worker did not start; see {log}")
        time.sleep(0.2)
    return log


def start_gunicorn(env: dict, workers: int = 2) -> str:
    port = free_port()
    proc = _start("gunicorn", [PY, "-m", "gunicorn", "brainai_site.wsgi:application", "--bind",
                               f"127.0.0.1:{port}", "--workers", str(workers)], env)
    wait_port(port, proc, "gunicorn")
    return f"http://127.0.0.1:{port}"


@atexit.register
def _stop_started() -> None:
    """Stop what _start started, newest first; runs at exit, nothing calls it by name."""
    for proc in reversed(_procs):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in _procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), printed beside every figure a bench gives."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def time_calls(fn, runs: int, warmup: int = 1, digits: int = 2) -> dict:
    """Median and p90 milliseconds of ``runs`` calls of ``fn`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {"median_ms": round(statistics.median(times), digits),
            "p90_ms": round(times[int(0.9 * (len(times) - 1))], digits)}
