#!/usr/bin/env bash
# Install Debian's Chromium for the browser test, once. Idempotent: does nothing when
# /usr/bin/chromium exists. The browser test drives it with Playwright's Python package
# (executable_path=/usr/bin/chromium); Playwright's own browser download is never used.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-browser: need root (or sudo) to apt-get install chromium" >&2; exit 1; }
  SUDO="sudo"
fi
echo "install-browser: installing Debian's chromium (apt-get)..."
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
/usr/bin/chromium --version
