# Leadrouter — `make run` starts the demo, `make test` runs the whole suite.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEV    := $(VENV)/.installed-dev

.DEFAULT_GOAL := help
.PHONY: help install run test lint format bench migrate clean contract

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed (set PYTHON=python3.11)")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	@touch $(STAMP)

$(DEV): $(STAMP)
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(DEV)

install: $(DEV) ## Create the virtual environment and install everything (with test tools)

migrate: $(STAMP) ## Apply database migrations
	$(PY) manage.py migrate --noinput

run: $(STAMP) ## Migrate, seed the demo, start web + worker + beat (embedded SQLite + filesystem broker)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py setup_periodic_tasks
	$(PY) manage.py seed_demo
	$(PY) manage.py run_embedded

test: $(DEV) ## Run the whole test suite (PostgreSQL and Redis when reachable)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(DEV) ## ruff (check + format --check), mypy, makemigrations --check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	$(PY) manage.py makemigrations --check --dry-run

format: $(DEV) ## Format the code
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(DEV) ## Run the benchmarks; figures go to bench/results/
	$(PY) bench/run.py

contract: $(DEV) ## The black-box contract checks in ../shared/contract (SQLite)
	PROJECT_DIR=$(CURDIR) $(PY) -m pytest ../shared/contract

clean: ## Remove the virtual environment and local data
	rm -rf $(VENV) var db.sqlite3 db.sqlite3-wal db.sqlite3-shm
