"""The production compose file, the image and CI wiring hold together.

`docker compose config -q` is run when a compose client is installed; this machine has
no Docker engine, so the structure is also checked with PyYAML (installed with
drf-spectacular).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_the_services_of_the_design(compose):
    services = compose["services"]
    assert {"postgres", "redis", "web", "worker-gpu", "worker-llm", "flower"} <= set(services)
    assert services["flower"]["profiles"] == ["monitoring"]


def test_redis_persists_with_aof_and_never_evicts(compose):
    command = " ".join(compose["services"]["redis"]["command"])
    assert "--appendonly yes" in command and "--maxmemory-policy noeviction" in command


def test_the_gpu_worker_takes_one_study_at_a_time_on_a_reserved_gpu(compose):
    gpu = compose["services"]["worker-gpu"]
    device = gpu["deploy"]["resources"]["reservations"]["devices"][0]
    assert device["driver"] == "nvidia" and device["count"] == 1 and "gpu" in device["capabilities"]
    entry = (ROOT / "scripts" / "docker-entrypoint.sh").read_text()
    gpu_line = entry[entry.index("worker-gpu)"):entry.index("worker-llm)")]
    assert "-Q gpu " in gpu_line and "--concurrency 1" in gpu_line
    assert "-Q llm" in entry[entry.index("worker-llm)"):]


def test_every_app_service_uses_the_one_image(compose):
    images = {name: s.get("image") for name, s in compose["services"].items()
              if name in ("web", "worker-gpu", "worker-llm", "migrate")}
    assert set(images.values()) == {"brainai:latest"}
    assert compose["services"]["web"]["command"] == ["web"]


def test_secrets_are_required_not_defaulted(compose):
    env = compose["services"]["web"]["environment"]
    assert "${DJANGO_SECRET_KEY:?" in env["DJANGO_SECRET_KEY"]
    assert "${POSTGRES_PASSWORD:?" in env["DATABASE_URL"]


def test_ci_runs_make_test():
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_docker_compose_config_validates():
    """scripts/install-test-tools.sh installs a compose client; without one the test fails."""
    assert shutil.which("docker-compose") or shutil.which("docker"), "no compose client: run scripts/install-test-tools.sh"
    env = {**os.environ, "POSTGRES_PASSWORD": "x", "DJANGO_SECRET_KEY": "y" * 40, "ALLOWED_HOSTS": "localhost"}
    command = ["docker", "compose", "config", "-q"]
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, env=env) if shutil.which("docker") else None
    if probe is None or probe.returncode != 0:
        if not shutil.which("docker-compose"):
            pytest.fail("docker is installed without the compose plugin, and there is no docker-compose")
        command = ["docker-compose", "config", "-q"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
    if "does not match any of the regexes: '^x-'" in done.stderr and "'name'" in done.stderr:
        pytest.fail("a compose v1 client predates the top-level 'name' key: install compose v2")
    assert done.returncode == 0, done.stderr


def test_one_beat_runs_the_periodic_sweep(compose):
    """Lost work is swept by celery beat: its own service in compose, -B in `make run`."""
    beat = compose["services"]["beat"]
    assert beat["command"] == ["beat"] and beat["image"] == "brainai:latest"
    entry = (ROOT / "scripts" / "docker-entrypoint.sh").read_text()
    assert "celery -A brainai_site beat" in entry[entry.index("beat)"):]
    run = (ROOT / "scripts" / "run.py").read_text()
    assert '"-B"' in run
    from django.conf import settings

    assert settings.CELERY_BEAT_SCHEDULE["sweep-stalled"]["task"] == "workers.tasks.sweep_stalled"


def test_the_dicom_listener_is_its_own_service_on_11112(compose):
    listener = compose["services"]["dicom-listener"]
    assert listener["image"] == "brainai:latest"
    assert listener["command"][:2] == ["manage", "dicom_listener"] and "11112" in listener["command"]
    assert any(str(p).endswith(":11112") for p in listener["ports"])
    assert any("dicom-inbox" in v for v in listener["volumes"])  # the inbox outlives the container


def test_the_image_carries_pg_dump_of_the_compose_servers_major():
    """manage.py backup/restore run pg_dump/pg_restore in the app image; pg_dump refuses a
    server newer than itself, and bookworm's own client is 15. The image installs
    postgresql-client-<major> from PGDG for the major of compose's postgres image, and the
    build fails if `pg_dump --version` is not that major. No Docker engine here: the text
    is checked, the build itself is not run."""
    import re

    dockerfile = (ROOT / "Dockerfile").read_text()
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    server_major = re.match(r"postgres:(\d+)", compose["services"]["postgres"]["image"]).group(1)
    pg_major = re.search(r"^ARG PG_MAJOR=(\d+)$", dockerfile, re.M).group(1)
    assert pg_major == server_major, f"image client {pg_major} != compose server {server_major}"

    base = re.search(r"^FROM python:[\w.]+-slim-(\w+)", dockerfile, re.M).group(1)
    install = dockerfile[dockerfile.index("ARG PG_MAJOR"):dockerfile.index("WORKDIR /app")]
    assert f"https://apt.postgresql.org/pub/repos/apt {base}-pgdg main" in install  # the PGDG suite of the base
    assert "signed-by=" in install and "ACCC4CF8.asc" in install  # the repository's key, not trusted=yes
    assert 'apt-get install -y --no-install-recommends "postgresql-client-${PG_MAJOR}"' in install
    assert 'pg_dump --version | grep -q " ${PG_MAJOR}\\."' in install  # the build proves the major
    assert 'pg_restore --version | grep -q " ${PG_MAJOR}\\."' in install
    # Installed before the app is copied, and on the PATH of the user the services run as.
    assert dockerfile.index("postgresql-client-") < dockerfile.index("COPY . .") < dockerfile.index("USER brainai")
