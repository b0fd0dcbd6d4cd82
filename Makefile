# OppSync — the two commands of the README are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PG_URL ?= postgres://postgres@127.0.0.1:5432/oppsync
PYTEST_ARGS ?=
# pytest-xdist processes per pass: the suite mostly waits on the processes it starts (emulator,
# workers, browsers): four processes keep both cores busy (measured: three left them half idle).
PYTEST_WORKERS ?= 4
PYTEST := $(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup --durations=25
# Each pass prints its wall time after pytest's own summary (and keeps pytest's exit code:
# 5, no tests collected, fails the run like any other).
timed = start=$$(date +%s); $(1); status=$$?; [ $$status -ne 5 ] || echo "no tests ran: pytest collected nothing (exit code 5)"; echo "$(2) pass: $$(( $$(date +%s) - start )) s wall time"; exit $$status

.PHONY: run test lint typecheck pytest-sqlite pytest-postgres services venv pubsub-stubs

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

## Run the whole application: web, Celery worker and beat (and the emulator without credentials).
run: venv
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demo_admin
	$(BIN)/python manage.py run_stack

## Run lint, type checks and the whole suite on SQLite, then on PostgreSQL.
test: venv services lint typecheck pytest-sqlite pytest-postgres

services:
	bash .ci/services.sh

## ruff, and the import contracts of pyproject.toml: which way dependencies run (README, Architecture).
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

## Regenerate the checked-in Pub/Sub API stubs (eventbus/) from eventbus/pubsub_api.proto.
pubsub-stubs: venv
	$(BIN)/python -m grpc_tools.protoc -I. --python_out=. --pyi_out=. --grpc_python_out=. eventbus/pubsub_api.proto

typecheck: venv
	$(BIN)/mypy .

## Each pass leaves out the tests pyproject.toml gives to the other pass only (they cannot depend
## on the database).
pytest-sqlite: venv
	@$(call timed,env -u DATABASE_URL $(PYTEST) -m "not postgresql_pass_only" $(PYTEST_ARGS),SQLite)

pytest-postgres: venv
	@$(call timed,DATABASE_URL=$(PG_URL) $(PYTEST) -m "not sqlite_pass_only" $(PYTEST_ARGS),PostgreSQL)
