# Two commands on a fresh machine (see README):  make run  ·  make test
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install lint migrate demo

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Serve the platform with a demo municipality: platform.localhost:8000, demo.localhost:8000
run: export DJANGO_DEBUG = 1
run: export SESSHU_PUBLIC_PORT = 8000
run: install
	$(BIN)/python manage.py db_bootstrap
	$(BIN)/python manage.py migrate_schemas --shared -v0
	$(BIN)/python manage.py migrate_schemas --tenant -v0
	$(BIN)/python manage.py demo_setup
	$(BIN)/python manage.py runserver 0.0.0.0:8000

## The whole test suite
test: install
	scripts/ensure_chromium.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	SESSHU_TESTING=1 $(BIN)/mypy platform tenants booking audit
	SESSHU_TESTING=1 $(BIN)/python manage.py makemigrations --check --dry-run
