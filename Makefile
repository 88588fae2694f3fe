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
	DEMO_FAKE_BUYER=1 $(PY) manage.py seed_demo
	DEMO_FAKE_BUYER=1 DELIVERY_ALLOW_PRIVATE_NETWORKS=1 $(PY) manage.py run_embedded

# The test database is chosen here and said aloud (the settings never guess): DATABASE_URL
# when set, else PostgreSQL when it answers on 127.0.0.1:5432, else SQLite.
TEST_PG_URL ?= postgres://postgres@127.0.0.1:5432/leadrouter
test: $(DEV) ## Run the whole test suite (PostgreSQL and Redis when reachable)
	@if [ -z "$$DATABASE_URL" ] && $(PY) -c 'import socket; socket.create_connection(("127.0.0.1", 5432), 0.5)' 2>/dev/null; then \
	  echo "make test: PostgreSQL answers on 127.0.0.1:5432, DATABASE_URL=$(TEST_PG_URL)"; \
	  DATABASE_URL=$(TEST_PG_URL) $(PY) -m pytest $(PYTEST_ARGS); \
	else \
	  echo "make test: DATABASE_URL=$${DATABASE_URL:-unset (SQLite; PostgreSQL tests are skipped)}"; \
	  $(PY) -m pytest $(PYTEST_ARGS); \
	fi

lint: $(DEV) ## ruff (check + format --check), mypy, makemigrations --check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	$(PY) manage.py makemigrations --check --dry-run

format: $(DEV) ## Format the code
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(DEV) ## Run the benchmarks in databases of their own (BENCH_DATABASE_URL overrides); figures go to bench/results/
	$(PY) bench/run.py

contract: $(DEV) ## The black-box contract checks in ../shared/contract (SQLite)
	PROJECT_DIR=$(CURDIR) $(PY) -m pytest ../shared/contract

clean: ## Remove the virtual environment and local data
	rm -rf $(VENV) var db.sqlite3 db.sqlite3-wal db.sqlite3-shm
