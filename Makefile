# qlued — the two commands of README.md, and the chores around them.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
WORKERS ?= 2

.PHONY: help setup run test lint fmt bench clean

help:  ## list the targets
	@grep -E '^[a-z]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

setup: $(VENV)/.installed .env  ## create .venv, install the service with its test tools, write .env

# The settings file python-decouple reads: a generated SECRET_KEY, readable by its owner
# only. Written once: an existing .env (and so the key that signs sessions) is kept.
.env:
	umask 077 && $(PYTHON) -c 'import secrets; print("SECRET_KEY=" + secrets.token_urlsafe(50))' > $@.tmp
	mv $@.tmp $@

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -U pip
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

run: setup  ## serve on 127.0.0.1:8000 with the demo provider, its spooler and a demo token
	DEBUG=$${DEBUG:-true} bash -c '\
	  set -e; \
	  $(BIN)/python manage.py migrate --noinput -v0; \
	  $(BIN)/python manage.py collectstatic --noinput -v0; \
	  $(BIN)/python manage.py setup_demo; \
	  $(BIN)/python manage.py run_spooler $${DEFAULT_STORAGE:-alqor} & spooler=$$!; \
	  trap "kill $$spooler 2>/dev/null" EXIT; \
	  $(BIN)/gunicorn qlued.wsgi -c qlued/gunicorn_conf.py -b $(HOST):$(PORT) -w $(WORKERS)'

test: setup  ## every suite: SQLite, PostgreSQL, then the client and interop suites
	bash tests/run_all.sh

lint: setup  ## ruff, and mypy --strict on the plain-Python packages
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: setup  ## ruff, fixing
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

BENCHES := api_bench spooler_bench grow_bench sim_bench

# Every benchmark runs even after one misses a target; the status says whether any did.
bench: setup  ## the benchmarks of bench/ (needs wrk)
	@status=0; for b in $(BENCHES); do $(BIN)/python bench/$$b.py || status=1; done; exit $$status

clean:  ## remove the venvs and local data
	rm -rf $(VENV) .cache data
