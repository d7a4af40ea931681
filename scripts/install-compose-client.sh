#!/usr/bin/env bash
# Install a Docker Compose client for the test that validates docker-compose.yml
# (`docker compose config`), once. Idempotent: does nothing when `docker compose` or
# `docker-compose` already answers. Debian's docker-compose (v1.29) validates the file;
# no Docker engine is needed for `config`.
set -euo pipefail
if docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-compose-client: need root (or sudo) to apt-get install docker-compose" >&2; exit 1; }
  SUDO="sudo"
fi
echo "install-compose-client: installing Debian's docker-compose (apt-get)..."
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
docker-compose version --short
