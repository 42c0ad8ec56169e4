#!/usr/bin/env bash
# Every suite, as a new user and CI run them: lint, SQLite, PostgreSQL, then the
# real qiskit client and the real sqooler spooler (their venvs are built when absent),
# then the dashboard in a real browser (Debian's chromium, installed when absent).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export DEBUG=true SECRET_KEY=test-only-secret-key
unset DATABASE_URL

echo "== ruff and mypy"
$BIN/ruff check .
$BIN/mypy

echo "== SQLite"
$BIN/pytest -m "not client and not interop and not browser" -p no:cacheprovider

echo "== PostgreSQL"
PGHOST=127.0.0.1 PGPORT=5432 PGUSER=postgres
export PGHOST PGPORT PGUSER
if ! pg_isready -q -t 5; then
  echo "PostgreSQL is down: starting it"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  for _ in $(seq 30); do pg_isready -q && break; sleep 1; done
fi
scratch="qlued_ci_$$"
psql -q -d postgres -c "CREATE DATABASE $scratch"
trap 'PGOPTIONS="--client-min-messages=warning" psql -q -d postgres -c "DROP DATABASE IF EXISTS test_$scratch" -c "DROP DATABASE IF EXISTS $scratch"' EXIT
# The load and fault tests (tests/test_load.py) run once, in the SQLite pass above.
DATABASE_URL="postgres://postgres@127.0.0.1:5432/$scratch" \
  $BIN/pytest -m "not client and not interop and not browser and not load" -p no:cacheprovider

echo "== client and interop"
$BIN/pytest -m "client or interop" -p no:cacheprovider

echo "== browser"
bash tests/browser/ensure_chromium.sh
QLUED_BROWSER_REQUIRED=1 $BIN/pytest -m browser -p no:cacheprovider tests/browser
