"""Back up and restore one BrainAI site: the database and the media folder, with a manifest.

A backup is a folder:

    manifest.json      vendor, time, sha256 of the database file, of every media file,
                       and the snapshot hash of every signed report version
    database.sqlite3   SQLite's online backup (the sqlite3 backup API), or
    database.pgdump    pg_dump --format=custom (PostgreSQL)
    media.tar          MEDIA_ROOT (originals, previews, maps)

The database is copied before the media folder: files are written before the rows that
name them commit, so every file a backed-up row names is already on disk when the folder
is read. ``restore`` loads a backup into an *empty* database and an empty MEDIA_ROOT
(the ones the settings name), checks every media file against the manifest, and checks
that each signed version is there with the same hash and that its snapshot still matches
it. Media on S3 (``BRAINAI_S3_BUCKET``) is not copied here: version the bucket instead.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import sqlite3
import subprocess
import tarfile
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection, models

FORMAT = 1
DATABASE_FILE = {"sqlite": "database.sqlite3", "postgresql": "database.pgdump"}


class BackupError(Exception):
    """A backup or restore that cannot go ahead; the message says why."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _media_root() -> Path:
    if settings.STORAGES["default"]["BACKEND"] != "django.core.files.storage.FileSystemStorage":
        raise BackupError("media is on object storage (BRAINAI_S3_BUCKET): back the bucket up with its "
                          "versioning or replication; this command copies MEDIA_ROOT only")
    return Path(settings.MEDIA_ROOT)


def _pg_env() -> dict:
    """libpq variables for the current database, so no password appears on a command line."""
    db = connection.settings_dict
    env = dict(os.environ)
    for var, key in (("PGHOST", "HOST"), ("PGPORT", "PORT"), ("PGUSER", "USER"), ("PGPASSWORD", "PASSWORD"),
                     ("PGDATABASE", "NAME")):
        if db.get(key):
            env[var] = str(db[key])
    return env


def _run(args: list[str]) -> None:
    done = subprocess.run(args, env=_pg_env(), capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"{args[0]} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")


def _signed_versions() -> dict[str, str]:
    from scans.models import Report

    return {str(pk): sha for pk, sha in Report.objects.exclude(snapshot_sha256="").values_list("pk", "snapshot_sha256")}


def backup(dest: Path) -> dict:
    """Write a backup of the current database and MEDIA_ROOT into the new folder ``dest``.

    Returns:
        The manifest (also written to ``dest/manifest.json``).

    Raises:
        BackupError: ``dest`` exists, media is on S3, or pg_dump failed.
    """
    vendor = connection.vendor
    if vendor not in DATABASE_FILE:
        raise BackupError(f"no backup for a {vendor} database")
    media = _media_root()
    if dest.exists():
        raise BackupError(f"{dest} exists; a backup goes into a new folder")
    dest.mkdir(parents=True)
    signed = _signed_versions()  # read first: every version listed is in the copy below
    database = dest / DATABASE_FILE[vendor]
    if vendor == "sqlite":
        source, target = sqlite3.connect(connection.settings_dict["NAME"]), sqlite3.connect(database)
        with target:
            source.backup(target)
        source.close()
        target.close()
    else:
        _run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--file={database}"])
    files: dict[str, str] = {}
    with tarfile.open(dest / "media.tar", "w") as tar:
        for path in sorted(p for p in media.rglob("*") if p.is_file()) if media.is_dir() else []:
            name = path.relative_to(media).as_posix()
            files[name] = _sha256(path)
            tar.add(path, arcname=name, recursive=False)
    manifest = {"format": FORMAT, "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                "vendor": vendor, "database": {"file": database.name, "sha256": _sha256(database)},
                "media": files, "signed_versions": signed}
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


def restore(src: Path) -> dict:
    """Load the backup in ``src`` into the (empty) current database and MEDIA_ROOT, then check it.

    Returns:
        ``{"vendor", "tables", "media_files", "signed_versions", "missing_files"}``.

    Raises:
        BackupError: the backup is damaged or of another vendor, the database or MEDIA_ROOT
        is not empty, or the restored data does not match the manifest.
    """
    manifest = json.loads((src / "manifest.json").read_text())
    if manifest.get("format") != FORMAT or manifest["vendor"] != connection.vendor:
        raise BackupError(f"a {manifest.get('vendor')} backup (format {manifest.get('format')}) cannot be "
                          f"restored into this {connection.vendor} database")
    database = src / manifest["database"]["file"]
    if _sha256(database) != manifest["database"]["sha256"]:
        raise BackupError(f"{database.name} does not match its sha256 in the manifest")
    if connection.introspection.table_names():
        raise BackupError("the database is not empty: restore into a new database")
    media = _media_root()
    if media.is_dir() and any(media.iterdir()):
        raise BackupError(f"MEDIA_ROOT ({media}) is not empty: restore into a new folder")
    connection.close()
    if connection.vendor == "sqlite":
        source, target = sqlite3.connect(database), sqlite3.connect(connection.settings_dict["NAME"])
        with target:
            source.backup(target)
        source.close()
        target.close()
    else:
        _run(["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error",
              f"--dbname={connection.settings_dict['NAME']}", str(database)])
    media.mkdir(parents=True, exist_ok=True)
    with tarfile.open(src / "media.tar") as tar:
        tar.extractall(media, filter="data")  # regular files inside media/ only
    for name, sha in manifest["media"].items():
        if not (media / name).is_file() or _sha256(media / name) != sha:
            raise BackupError(f"media file {name} is missing or differs from the manifest")
    return {"vendor": connection.vendor, "tables": len(connection.introspection.table_names()),
            "media_files": len(manifest["media"]), "signed_versions": _check_signed(manifest["signed_versions"]),
            "missing_files": missing_files()}


def _check_signed(expected: dict[str, str]) -> int:
    from scans import snapshot
    from scans.models import Report

    found = dict(Report.objects.filter(pk__in=[int(pk) for pk in expected]).values_list("pk", "snapshot_sha256"))
    for pk, sha in expected.items():
        if found.get(int(pk)) != sha:
            raise BackupError(f"report version {pk} is missing or its snapshot hash changed")
    for report in Report.objects.filter(pk__in=found):
        if not snapshot.is_intact(report):
            raise BackupError(f"report version {report.pk}: its snapshot no longer matches its hash")
    return len(expected)


def missing_files() -> list[str]:
    """Names stored in Scan and Analysis file fields that the media storage does not have."""
    from scans.models import Analysis, Scan

    missing = []
    for model in (Scan, Analysis):
        fields = [f.attname for f in model._meta.concrete_fields if isinstance(f, models.FileField)]
        for row in model.objects.values_list(*fields):
            missing.extend(name for name in row if name and not default_storage.exists(name))
    return missing
