#!/usr/bin/env bash
# Install the Debian packages the test suite drives, once, only those missing:
#   chromium        the real-browser test (Playwright's Python package, executable_path=/usr/bin/chromium;
#                   Playwright's own browser download is never used)
#   docker-compose  validates docker-compose.yml (`config` needs no Docker engine)
#   orthanc, orthanc-dicomweb  the test PACS our results are sent to (tests/pacs.py starts it)
#   dicom3tools     dciodvfy, which validates our SR and secondary captures
#   dcmtk           storescu, the C-STORE sender of the listener tests and bench/dicom_listener.py
# Idempotent: does nothing when all are present.
set -euo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium fonts-dejavu-core)
docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
[ -x /usr/sbin/Orthanc ] || missing+=(orthanc)
[ -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || missing+=(orthanc-dicomweb)
command -v dciodvfy >/dev/null || missing+=(dicom3tools)
command -v storescu >/dev/null || missing+=(dcmtk)
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-test-tools: need root (or sudo) to apt-get install ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "install-test-tools: installing Debian's ${missing[*]} (apt-get)..."
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
