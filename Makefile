# The two commands: `make demo` runs the dashboard with a live demo workload,
# `make test` runs every test against real services. Both start what they need.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The suite runs in TEST_WORKERS pytest-xdist processes, a test file to each
# (module fixtures such as a browser or a served Daphne start once per file);
# each worker is a test run of its own (tests/settings.py). TEST_WORKERS=0 runs
# it in one process.
TEST_WORKERS ?= 3
# The suite runs on PostgreSQL (ops/postgres.sh's cluster, a database per run and
# worker); the tests that touch storage run once more on SQLite, the default of
# `make demo`: capture, store, requeue, bulk jobs, metrics history and
# downsampling, retention. TEST_DB=sqlite runs the whole suite on SQLite instead.
TEST_DB ?= postgres
STORAGE_TESTS := tests/test_deadletter_capture.py tests/test_deadletter_store.py \
	tests/test_deadletter_requeue.py tests/test_deadletter_bulk.py tests/test_jobs.py \
	tests/test_deadletter_policies_capture.py tests/test_deadletter_schedule_service.py \
	tests/test_metrics_store.py tests/test_metrics_history.py tests/test_metrics_downsample.py \
	tests/test_deadletter_retention.py tests/test_deadletter_bulk_insert.py tests/test_metrics_insert_rows.py \
	tests/test_collector_fence.py
STAMP := $(VENV)/.requirements-installed


.PHONY: demo topology topology-down test venv services services-down services-status lint typecheck imports check migrate clean help screenshots

help:
	@echo "make demo           start services, migrate, demo login, workload, web+collector+worker"
	@echo "make topology       production topology on PostgreSQL: nginx on 127.0.0.1:8080, two web,"
	@echo "                    two collectors, tasks and jobs workers, beat (ops/Procfile.prod)"
	@echo "make topology-down  stop what make topology started (Ctrl-C does too)"
	@echo "make test           start services and run the whole test suite"
	@echo "make services-down  stop RabbitMQ, Kafka, Redis and PostgreSQL started by ops/up.sh"
	@echo "make check          ruff, mypy and the import contracts (lint-imports)"
	@echo "make screenshots    every page of a running demo at 1440 and 390 px, light and dark"

# Reinstall only when requirements.txt changes.
$(STAMP): requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $(STAMP)

venv: $(STAMP)

services: venv
	ops/up.sh

services-down:
	ops/down.sh

services-status:
	ops/status.sh

migrate: venv
	$(BIN)/python manage.py migrate --no-input -v0

demo: services migrate
	@scripts/demo.sh

# The production topology (README, "Running in production"): PostgreSQL, nginx in
# front of two Daphne, ops/Procfile.prod under scripts/supervise.py.
topology: services
	ops/nginx.sh install
	@scripts/topology.sh

topology-down:
	@scripts/topology.sh down

# The test cluster runs without fsync (ops/postgres.sh says why that is safe here).
test: export MQB_POSTGRES_FSYNC = off
test: services
	scripts/test-prereqs.sh
	$(BIN)/lint-imports --no-cache
	MQB_TEST_DB=$(TEST_DB) $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)
	if [ "$(TEST_DB)" = postgres ]; then \
	  MQB_TEST_DB=sqlite $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS) $(STORAGE_TESTS); \
	fi

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy .

# The layering contracts in pyproject.toml ([tool.importlinter]).
imports: venv
	$(BIN)/lint-imports --no-cache

check: lint typecheck imports

# Every page of a running `make demo`, saved in var/screenshots/ (options: SCREENSHOTS_ARGS).
screenshots: venv
	$(BIN)/python scripts/screenshots.py $(SCREENSHOTS_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .import_linter_cache
