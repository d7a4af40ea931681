"""Backup and restore (brainai_site.backup, `manage.py backup` / `manage.py restore`).

A database with a signed report is backed up, then restored by a separate process into a
fresh database and a fresh media folder: the report, its snapshot and hash, and every
media file must come back byte for byte. On SQLite always; on PostgreSQL when
DATABASE_URL points at one (the restore goes into a database of the test's own).
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from scans.models import Report

# `sent`: no task reaches a worker left running by the e2e tests (tests/conftest.py).
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("sent")]

ROOT = Path(__file__).resolve().parents[2]
# Read in the restored site by a fresh process: the report as stored, and the media files.
_READ_BACK = """
import hashlib, json
from django.core.files.storage import default_storage
from scans import snapshot
from scans.models import Report, Scan
report = Report.objects.get(pk={pk})
names = [n for s in Scan.objects.filter(study_id=report.study_id) for n in (s.source.name, s.image.name) if n]
print(json.dumps({{"status": report.status, "sha256": report.snapshot_sha256, "digest": snapshot.digest(report.snapshot),
                  "snapshot": report.snapshot, "files": {{n: hashlib.sha256(default_storage.open(n).read()).hexdigest()
                                                        for n in names}}}}))
"""


@pytest.fixture
def fresh_database(tmp_path):
    """A DATABASE_URL for an empty database of the test's own, of the vendor the tests run on."""
    if connection.vendor == "sqlite":
        yield f"sqlite:///{tmp_path / 'restored.sqlite3'}"
        return
    import psycopg

    db = connection.settings_dict
    name = f"brainai_restore_{os.getpid()}"
    admin = dict(host=db["HOST"] or None, port=db["PORT"] or None, user=db["USER"] or None,
                 password=db["PASSWORD"] or None, dbname="postgres", autocommit=True)
    with psycopg.connect(**admin) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    auth = quote(db["USER"] or "") + (":" + quote(db["PASSWORD"]) if db["PASSWORD"] else "")
    yield f"postgres://{auth}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{name}"
    with psycopg.connect(**admin) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _site(tmp_path: Path, database_url: str, *command: str) -> subprocess.CompletedProcess:
    """manage.py in another process, on the restored site's database and media folder."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "brainai_site.settings", "DATABASE_URL": database_url,
           "BRAINAI_MEDIA_ROOT": str(tmp_path / "restored-media"), "BRAINAI_VAR_DIR": str(tmp_path / "var")}
    return subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def _media_sha256(names) -> dict[str, str]:
    return {n: hashlib.sha256((Path(settings.MEDIA_ROOT) / n).read_bytes()).hexdigest() for n in names}


def test_a_backup_restores_the_signed_report_its_snapshot_and_media(signed_report, fresh_database, tmp_path):
    signed = Report.objects.get(pk=signed_report.pk)
    names = [n for s in signed.study.scans.all() for n in (s.source.name, s.image.name) if n]
    assert signed.status == "signed" and signed.snapshot_sha256 and names
    call_command("backup", str(tmp_path / "backup"))
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    assert manifest["signed_versions"] == {str(signed.pk): signed.snapshot_sha256}

    restored = _site(tmp_path, fresh_database, "restore", str(tmp_path / "backup"))
    assert restored.returncode == 0, restored.stderr
    summary = json.loads(restored.stdout.strip().splitlines()[-1])
    assert summary["signed_versions"] == 1 and summary["missing_files"] == []
    assert summary["media_files"] == len(manifest["media"]) >= len(names)

    read = _site(tmp_path, fresh_database, "shell", "-c", _READ_BACK.format(pk=signed.pk))
    assert read.returncode == 0, read.stderr
    back = json.loads(read.stdout.strip().splitlines()[-1])
    assert back["status"] == "signed" and back["snapshot"] == signed.snapshot
    assert back["sha256"] == back["digest"] == signed.snapshot_sha256
    assert back["files"] == _media_sha256(names)


def test_restore_refuses_a_database_that_is_not_empty(signed_report, tmp_path):
    call_command("backup", str(tmp_path / "backup"))
    with pytest.raises(CommandError, match="not empty"):
        call_command("restore", str(tmp_path / "backup"))


def test_restore_refuses_a_damaged_backup(signed_report, fresh_database, tmp_path):
    call_command("backup", str(tmp_path / "backup"))
    database = next((tmp_path / "backup").glob("database.*"))
    database.write_bytes(database.read_bytes() + b"\0")
    restored = _site(tmp_path, fresh_database, "restore", str(tmp_path / "backup"))
    assert restored.returncode != 0 and "does not match its sha256" in restored.stderr


def test_a_backup_never_overwrites_a_folder(signed_report, tmp_path):
    (tmp_path / "backup").mkdir()
    with pytest.raises(CommandError, match="exists"):
        call_command("backup", str(tmp_path / "backup"))
