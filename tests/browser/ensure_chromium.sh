#!/usr/bin/env bash
# What the browser suite needs, installed when missing (and only then): Debian's chromium
# (Playwright's own browser download is not used) and Playwright for Python in .venv.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -x /usr/bin/chromium ]; then
  echo "Installing Debian's chromium for the browser suite"
  SUDO=$([ "$(id -u)" -eq 0 ] || echo sudo)
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core
fi
if ! .venv/bin/python -c "import playwright.sync_api" 2>/dev/null; then
  pin=$(grep -o '"playwright==[^"]*"' pyproject.toml | tr -d '"')
  .venv/bin/pip install -q --disable-pip-version-check "$pin"
fi
