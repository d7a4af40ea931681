"""A stack to break, for the fault tests (tests/e2e/test_faults_*.py).

``fault_stack`` (function fixture): a private ``redis-server`` on a free port that this
test may stop, restart or flush, with the test process's Celery app pointed at it (the
uploads' sends go there), and workers started on demand with ``start_worker`` (the
e2e conftest's ``start_worker``, on the app in tests/e2e/faulty_worker.py, which can
slow or crash the decode step). The session worker and Redis of the other e2e tests are
never touched. Everything is stopped at the end.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.broker import broker_at, free_port
from tests.e2e.conftest import _database_url, poll, start_redis, start_worker, stop, worker_env
from tests.e2e.faulty_worker import POISON  # noqa: F401  (in a stored file: its decoder is killed)


class FaultStack:
    """A private Redis and the workers started on it; see the module docstring."""

    def __init__(self, database_url: str, fake_gemini):
        self.url = f"redis://127.0.0.1:{free_port()}/0"
        self.workdir = tempfile.mkdtemp(prefix="brainai-fault-redis-")
        self.redis = start_redis(self.url, self.workdir)
        self.database_url = database_url
        self.fake_gemini = fake_gemini
        self.workers = []

    def start_worker(self, *, beat: bool = False, **env):
        """A worker on all queues (with celery beat embedded when ``beat``); ``env``
        overrides its environment (BRAINAI_BATCH_SIZE=..., BRAINAI_FAULT_DECODE_DELAY_S=...)."""
        full = worker_env(self.database_url, self.url, self.fake_gemini)
        full.update({k: str(v) for k, v in env.items()})
        extra = ("-B", "--schedule", str(Path(self.workdir) / f"beat-{len(self.workers)}")) if beat else ()
        worker = start_worker(full, f"fault{len(self.workers)}", app="tests.e2e.faulty_worker", extra=extra)
        self.workers.append(worker)
        return worker

    def stop_redis(self) -> None:
        stop(self.redis)

    def start_redis(self) -> None:
        self.redis = start_redis(self.url, self.workdir)

    def client(self):
        import redis

        return redis.Redis.from_url(self.url)

    def close(self) -> None:
        for worker in self.workers:
            stop(worker.proc, wait=5)  # its work is checked already; a slow exit is not waited for
            shutil.rmtree(worker.log_path.parent, ignore_errors=True)
        stop(self.redis)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def log(self) -> str:
        return "\n".join(w.log() for w in self.workers)


def pool_processes(worker) -> list[int]:
    """The pids of a worker's pool (child) processes."""
    path = Path(f"/proc/{worker.proc.pid}/task/{worker.proc.pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def deliveries(worker, task: str = "workers.tasks.analyze_study") -> int:
    """How many times the worker received ``task`` (its log's "Task ...[id] received" lines)."""
    return len(re.findall(rf"Task {re.escape(task)}\[[^\]]+\] received", worker.log()))


def kill_pool(worker) -> int:
    """SIGKILL the worker's pool process; returns its pid."""
    pids = pool_processes(worker)
    assert pids, "the worker has no pool process"
    os.kill(pids[0], signal.SIGKILL)
    return pids[0]


@pytest.fixture
def fault_stack(transactional_db, fake_gemini):
    """A FaultStack for one test, the test process's broker pointed at its Redis."""
    stack = FaultStack(_database_url(), fake_gemini)
    try:
        with broker_at(stack.url):
            yield stack
    finally:
        stack.close()


def wait_until(predicate, timeout: float, what: str, stack: FaultStack):
    """Poll until true; fail saying what was awaited, with the stack's workers' logs."""
    return poll(predicate, timeout, what, stack.log)
