"""A private PostgreSQL cluster that a test may stop and start: ``initdb`` in a temp dir,
a free port on 127.0.0.1, trust authentication, no fsync. The server binaries are found
with ``pg_config --bindir``, on the PATH, or under /usr/lib/postgresql/<major>/bin.

When the tests run as root (initdb refuses root), the cluster's directory is given to the
``postgres`` user and every server command runs through ``runuser -u postgres --``.

Every command has a hard timeout; ``close`` stops the server immediately and removes
the directory (it never raises).
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.broker import free_port


def server_bindir() -> Path | None:
    """The folder with initdb, pg_ctl and postgres, or None."""
    candidates = []
    if shutil.which("pg_config"):
        done = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, timeout=10)
        candidates.append(done.stdout.strip())
    if shutil.which("initdb"):
        candidates.append(str(Path(shutil.which("initdb")).resolve().parent))
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for folder in candidates:
        if folder and all(os.access(Path(folder) / b, os.X_OK) for b in ("initdb", "pg_ctl", "postgres")):
            return Path(folder)
    return None


class PrivatePostgres:
    """One cluster; see the module docstring. ``url(db)`` is a DATABASE_URL for ``db``."""

    def __init__(self):
        self.bindir = server_bindir()
        if self.bindir is None:
            pytest.fail("no PostgreSQL server binaries (initdb, pg_ctl, postgres): apt-get install postgresql")
        self.root = Path(tempfile.mkdtemp(prefix="brainai-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                pytest.fail("running as root and there is no 'postgres' user for initdb")
            shutil.chown(self.root, "postgres", "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        try:
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                      "--no-instructions", timeout=120)
            with open(self.data / "postgresql.conf", "a") as conf:
                conf.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                           f"unix_socket_directories = '{self.root}'\nfsync = off\nsynchronous_commit = off\n"
                           "full_page_writes = off\nmax_connections = 50\n")
            self.start()
        except BaseException:
            self.close()
            raise

    def _run(self, binary: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        done = subprocess.run([*self.as_user, str(self.bindir / binary), *args], capture_output=True, text=True,
                              timeout=timeout, cwd=self.root)
        if done.returncode != 0:
            pytest.fail(f"{binary} {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """Start and wait (at most 60 s) until it accepts connections."""
        self._run("pg_ctl", "start", "-D", str(self.data), "-l", str(self.root / "server.log"), "-w", "-t", "60",
                  timeout=90)

    def stop(self, mode: str = "fast") -> None:
        """``fast``: clients are disconnected, open transactions roll back (what a restart does)."""
        self._run("pg_ctl", "stop", "-D", str(self.data), "-m", mode, "-w", "-t", "60", timeout=90)

    def connect(self, database: str = "postgres", **kwargs):
        import psycopg

        return psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=database,
                               connect_timeout=5, **kwargs)

    def create_database(self, name: str) -> str:
        with self.connect(autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def log(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        try:
            subprocess.run([*self.as_user, str(self.bindir / "pg_ctl"), "stop", "-D", str(self.data), "-m", "immediate",
                            "-w", "-t", "30"], capture_output=True, timeout=45, cwd=self.root)
        except subprocess.TimeoutExpired:
            pid_file = self.data / "postmaster.pid"
            if pid_file.exists():
                try:
                    os.kill(int(pid_file.read_text().split()[0]), 9)
                except (OSError, ValueError):
                    pass
            time.sleep(1)
        shutil.rmtree(self.root, ignore_errors=True)
