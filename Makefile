# Bijli Sahayak — `make run` starts everything, `make test` runs every check.
#
# The virtualenv and the trained Rasa model live outside the clone, under $(CACHE), named by a
# hash of what built them, so a fresh clone (CI's) reuses them instead of spending minutes again.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

export BIJLI_CACHE_DIR ?= $(HOME)/.cache/bijli
CACHE := $(BIJLI_CACHE_DIR)
PY_VERSION := $(shell cat .python-version)
# pyenv's interpreter for .python-version, else any python3.10 on PATH.
BASE_PYTHON ?= $(shell p=$$(PYENV_VERSION=$(PY_VERSION) pyenv which python 2>/dev/null) && echo $$p || command -v python3.10)
# Only what decides the installed packages: the interpreter, the lock, and pyproject's [project].
VENV_HASH := $(shell { cat .python-version constraints.txt; sed -n '/^\[project\]/,/^\[project.scripts\]/p' pyproject.toml; } | sha256sum | cut -c1-16)
VENV := $(CACHE)/venv-$(VENV_HASH)
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
PG_TEST_URL ?= postgresql://127.0.0.1:5432/test

export TF_CPP_MIN_LOG_LEVEL := 2
export PYTHONUNBUFFERED := 1

.PHONY: help venv run test lint format train test-sqlite test-postgres bench clean

help:
	@echo "make run    start the whole stack on embedded defaults (web, rasa, actions, worker)"
	@echo "make test   lint, train if needed, then the whole test suite (SQLite, then PostgreSQL)"
	@echo "make lint   ruff, ruff format --check, mypy and the layering contracts (lint-imports)"
	@echo "make bench  the speed benchmarks of bench/RESULTS.md (about 40 minutes; not part of make test)"

# No prerequisites: the hash in the name already changes when they do.
$(VENV)/.installed:
	@test -n "$(BASE_PYTHON)" || { echo "Python $(PY_VERSION) not found: install it with pyenv" >&2; exit 1; }
	@mkdir -p $(CACHE)
	@echo "creating $(VENV) (first time only: a few minutes, Rasa and TensorFlow are large)"
	@rm -rf $(VENV)
	$(BASE_PYTHON) -m venv $(VENV)
	$(PY) -m pip install --progress-bar on --upgrade 'pip<25' 'setuptools>=65,<71' wheel
	$(PY) -m pip install --progress-bar on -c constraints.txt -e '.[dev]'
	$(PY) -m pip check
	@touch $@

# The venv is shared between clones: point its editable install at this clone every time. The
# check runs from / so that it sees what `bijli` imports (python -c would find ./bot first).
venv: $(VENV)/.installed
	@(cd / && $(PY) -c 'import bot, pathlib, sys; sys.exit(pathlib.Path(bot.__file__).resolve().parent.parent != pathlib.Path(sys.argv[1]).resolve())' '$(CURDIR)') 2>/dev/null \
		|| $(PY) -m pip install -q --no-deps --no-build-isolation -e .

train: venv
	@$(BIN)/bijli train

run: venv train
	@$(BIN)/bijli run

lint: venv
	$(BIN)/ruff check bot notifier tests bench
	$(BIN)/ruff format --check bot notifier tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

format: venv
	$(BIN)/ruff format bot notifier tests bench
	$(BIN)/ruff check --fix bot notifier tests bench

test-sqlite: venv train
	$(BIN)/pytest -p no:cacheprovider

# The same suite on PostgreSQL when one answers; the NLU evaluation, model-loading and browser
# tests don't touch the database, so they run once, above.
test-postgres: venv train
	@if $(PY) -c 'import socket; socket.create_connection(("127.0.0.1", 5432), 2)' 2>/dev/null; then \
		echo "== PostgreSQL answers on 127.0.0.1:5432: running the suite on it"; \
		DATABASE_URL=$(PG_TEST_URL) $(BIN)/pytest -p no:cacheprovider -m "not nlu_eval and not model and not browser"; \
	else echo "== no PostgreSQL on 127.0.0.1:5432: PostgreSQL pass skipped"; fi

test: lint test-sqlite test-postgres

# Speed is measured, not asserted: these print their figures beside the stock `rasa init` bot's,
# measured in the same run, for bench/RESULTS.md. They stay out of `make test` (this machine is
# shared and noisy). The other scripts in bench/ (campaigns, chaos, imports, NLU) run on their own.
bench: venv train
	$(PY) bench/rasa_bench.py --rounds 3 --messages 200
	$(PY) bench/rasa_bench.py --rounds 3 --messages 200 --registered 0
	$(PY) bench/inbound_bench.py --rounds 3 --burst 600 --burst-rate 100 --workers 4 \
		--rasa-messages 300 --rasa-concurrency 10 --mps 1000 --rates ''

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
