# OppSync — the two commands of the README are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PG_URL ?= postgres://postgres@127.0.0.1:5432/oppsync
PYTEST_ARGS ?=

.PHONY: run test lint typecheck pytest-sqlite pytest-postgres services venv

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

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy .

pytest-sqlite: venv
	env -u DATABASE_URL $(BIN)/pytest $(PYTEST_ARGS)

pytest-postgres: venv
	DATABASE_URL=$(PG_URL) $(BIN)/pytest $(PYTEST_ARGS)
