"""PostgreSQL restarted mid-study (issue #19): the worker's tasks retry, and nothing is
lost or done twice.

A private PostgreSQL cluster (tests/e2e/private_pg.py) that this test stops and starts,
a private Redis, and a real Celery worker process (tests/e2e/faulty_worker.py: one slice
per batch, a delay before each decode so the restart lands mid-study), all on their own
environment: the session's e2e worker and test database are never touched. The study is
stored through ``scans.services.register_upload`` in a ``manage.py shell`` process on the
private database (the web door plays no part in a fault of the worker), and every check
reads the private database with psycopg. Each wait has a hard timeout; everything is
stopped in ``finally``.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.broker import free_port
from tests.e2e.conftest import ROOT, poll, start_redis, start_worker, stop
from tests.e2e.private_pg import PrivatePostgres

pytestmark = [pytest.mark.e2e]

SLICES = 4

_UPLOAD = """
import json
from django.contrib.auth import get_user_model
from scans import services
from tests import builders as b
user = b.make_user(get_user_model(), "pgfault", "staff")
files = [b.upload(f"pg-{i}.png", b.png_bytes(seed=960 + i)) for i in range(N_SLICES)]
result = services.register_upload(user, files, {"patient_id": "MRN-PG"}, model="cnn")
print("RESULT " + json.dumps({"study": result.studies[0].pk, "accepted": result.accepted}))
"""


def _manage(env: dict, *args: str, timeout: float) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"manage.py {args[0]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _rows(pg: PrivatePostgres, sql: str, *params):
    """Rows of a query on the private database; [] while the server is down."""
    import psycopg

    try:
        with pg.connect("brainai") as conn:
            return conn.execute(sql, params).fetchall()
    except psycopg.OperationalError:
        return []


def _analysed(pg, study_id) -> int:
    rows = _rows(pg, "SELECT count(*) FROM scans_scan WHERE study_id = %s AND status = 'analyzed'", study_id)
    return rows[0][0] if rows else 0


def _report(pg, study_id):
    rows = _rows(pg, "SELECT status, label, key_scan_id, explanation_text, failure_reason FROM scans_report "
                     "WHERE study_id = %s AND is_current", study_id)
    return rows[0] if rows else None


class PgStack:
    """The private cluster, Redis and worker of one test, on their own environment."""

    def __init__(self, tmp_path: Path):
        self.tmp_path, self.pg, self.redis, self.worker = tmp_path, None, None, None
        self.media = Path(tempfile.mkdtemp(prefix="brainai-pgfault-media-"))

    def start(self, *, beat: bool = False, **worker_env) -> "PgStack":
        self.pg = PrivatePostgres()
        self.env = dict(os.environ)
        self.env.update({
            "DJANGO_SETTINGS_MODULE": "brainai_site.settings",
            "DATABASE_URL": self.pg.create_database("brainai"),
            "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
            "BRAINAI_VAR_DIR": str(self.tmp_path / "var"),
            "BRAINAI_MEDIA_ROOT": str(self.media),
            "BRAINAI_LLM_PROVIDER": "template",
            "PYTHONUNBUFFERED": "1",
            "TF_CPP_MIN_LOG_LEVEL": "2",
        })
        _manage(self.env, "migrate", "--noinput", "-v0", "--skip-checks", timeout=300)
        self.redis = start_redis(self.env["REDIS_URL"], str(self.tmp_path))
        extra = ("-B", "--schedule", str(self.tmp_path / "beat-schedule")) if beat else ()
        self.worker = start_worker({**self.env, **{k: str(v) for k, v in worker_env.items()}}, "pgfault",
                                   app="tests.e2e.faulty_worker", extra=extra)
        return self

    def log(self) -> str:
        return (self.worker.log() if self.worker else "") + "\n--- postgres ---\n" + (self.pg.log()[-2000:] if self.pg else "")

    def upload(self) -> int:
        out = _manage(self.env, "shell", "-c", _UPLOAD.replace("N_SLICES", str(SLICES)), timeout=180)
        result = json.loads(out.split("RESULT ", 1)[1].splitlines()[0])
        assert result["accepted"] == SLICES
        return result["study"]

    def close(self) -> None:
        if self.worker is not None:
            stop(self.worker.proc, wait=10)
            shutil.rmtree(self.worker.log_path.parent, ignore_errors=True)
        if self.redis is not None:
            stop(self.redis)
        if self.pg is not None:
            self.pg.close()
        shutil.rmtree(self.media, ignore_errors=True)


@pytest.fixture
def pg_stack(tmp_path):
    stack = PgStack(tmp_path)
    try:
        yield stack
    finally:
        stack.close()


def _check_complete_and_once(stack: PgStack, study_id: int):
    """Every scan analysed once, every file there, one complete report awaiting review."""
    pg = stack.pg
    report = poll(lambda: (r := _report(pg, study_id)) and r[0] in ("awaiting_review", "failed") and r, 300,
                  "the report after the restart", stack.log)
    assert report[0] == "awaiting_review", f"report {report[0]}: {report[4]}\n{stack.log()[-6000:]}"
    scans = _rows(pg, "SELECT id, status, attempts FROM scans_scan WHERE study_id = %s ORDER BY id", study_id)
    assert [s[1] for s in scans] == ["analyzed"] * SLICES, scans
    analyses = _rows(pg, "SELECT a.scan_id, a.overlay, a.heatmap FROM scans_analysis a "
                         "JOIN scans_scan s ON s.id = a.scan_id WHERE s.study_id = %s", study_id)
    assert sorted(a[0] for a in analyses) == [s[0] for s in scans]  # one analysis per scan, none twice
    for _, *names in analyses:  # no row points at a missing file
        assert all(not n or (stack.media / n).is_file() for n in names), names
    # Slices committed before the restart were not analysed again; the one in hand was, once more.
    attempts = sorted(s[2] for s in scans)
    assert attempts in ([1] * SLICES, [1] * (SLICES - 1) + [2]), attempts
    _, label, key_scan, explanation, _ = report
    assert label and key_scan in {s[0] for s in scans} and explanation
    assert _rows(pg, "SELECT count(*) FROM scans_report WHERE study_id = %s", study_id)[0][0] == 1


def _cut_mid_study(stack: PgStack, study_id: int, down_s: float, until=None) -> None:
    """Once a slice is stored and before the last: stop PostgreSQL (fast: every client is
    cut off, open transactions roll back), keep it down ``down_s`` s (and until ``until()``), start it."""
    poll(lambda: _analysed(stack.pg, study_id) >= 1, 240, "the first slice", stack.log)
    assert _analysed(stack.pg, study_id) < SLICES, "the study finished before the restart: nothing was tested"
    stack.pg.stop("fast")
    time.sleep(down_s)
    if until is not None:
        poll(until, 120, "the worker to give up while the database is down", stack.log)
    stack.pg.start()


def test_postgresql_restarted_mid_study_the_tasks_retry_and_nothing_is_lost(pg_stack):
    pg_stack.start(BRAINAI_BATCH_SIZE=1, BRAINAI_FAULT_DECODE_DELAY_S=2)
    study_id = pg_stack.upload()
    _cut_mid_study(pg_stack, study_id, down_s=3)  # down long enough for a retry to find no server

    _check_complete_and_once(pg_stack, study_id)
    log = pg_stack.worker.log()
    assert "Retry in" in log and "OperationalError" in log, "the worker never saw the restart: nothing was tested"
    print("\n".join(line[-240:] for line in log.splitlines() if "Retry" in line or "succeeded" in line))


def test_postgresql_down_past_the_retries_leaves_the_study_to_the_sweep_not_failed(pg_stack):
    """With no retries left (BRAINAI_TASK_RETRIES=0), the task gives up while the database
    is away; the study is not failed: it stays pending and celery beat's sweep
    (every 3 s here) sends it again once the database is back."""
    pg_stack.start(beat=True, BRAINAI_BATCH_SIZE=1, BRAINAI_FAULT_DECODE_DELAY_S=2, BRAINAI_TASK_RETRIES=0,
                   BRAINAI_SWEEP_INTERVAL_S=3)
    study_id = pg_stack.upload()
    _cut_mid_study(pg_stack, study_id, down_s=4,  # the task gives up at its first failure (no retries)
                   until=lambda: any(line in pg_stack.worker.log() for line in (
                       "left pending for the sweep", "raised unexpected: OperationalError")))

    _check_complete_and_once(pg_stack, study_id)
    log = pg_stack.worker.log()
    assert "sweep requeued lost work" in log and "'analyze': 1" in log, log[-4000:]
    failed = _rows(pg_stack.pg, "SELECT count(*) FROM scans_pipelineevent WHERE study_id = %s AND kind = 'failed'",
                   study_id)
    assert failed == [(0,)], failed
