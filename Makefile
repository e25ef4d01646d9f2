# TaskQueue: local development and CI entry points.
#   make run        bootstrap + migrate, then every service in the foreground (Ctrl-C stops)
#   make test       bootstrap + migrate the test database, then pytest over tests/
#                   (extra pytest options: make test PYTEST_ARGS='-x -k tasks')
#   make deploy-check  bootstrap, then only tests/deploy: Dockerfiles, compose, kustomize
#                   base/overlays, Tiltfile (all offline), SIGTERM of every service
#   make bootstrap  .venv + Python deps + Postgres/Redis reachable (started under .local/ if not)
#   make migrate    bootstrap + alembic upgrade of $DATABASE_URL
#   make createsuperuser  migrate, then create (or make staff) an /admin/ user: prompts, or
#                   TASKQUEUE_SUPERUSER_USERNAME/_EMAIL/_PASSWORD with ARGS=--no-input
#   make fuzz       bootstrap, then schemathesis over /api/openapi.json against a real gateway
#                   (tests/fuzz; FUZZ_MAX_EXAMPLES per operation, default larger than in make test)
#   make chaos      bootstrap, then tests/chaos/run_chaos.py: 10,000 tasks while processes are
#                   killed and Redis/Postgres restarted; prints figures (ARGS='--tasks 2000 --seed 7')
#   make soak       bootstrap, then tests/soak/run_soak.py at half the e2e capacity for DURATION
#                   seconds (default 1800), sampling RSS/connections/memory; prints growth
#   make stop       stop the Postgres/Redis that the bootstrap started under .local/
#   make clean      stop those, then remove .venv, .local and build/cache files
# All the logic lives in deploy/local/bootstrap.py (standard-library Python, any python3).

SHELL := /bin/bash
.DEFAULT_GOAL := help

# Interpreter that runs the bootstrap script (the venv itself gets the first Python >= 3.11).
ifeq ($(strip $(PYTHON)),)
PYTHON := $(shell for p in python3 python3.13 python3.12 python3.11; do command -v $$p && break; done)
endif
ifeq ($(PYTHON),)
$(error no python3 found: install Python >= 3.11 (Debian: apt-get install python3 python3-venv))
endif
export PYTHON
export PYTEST_ARGS

BOOTSTRAP = "$(PYTHON)" deploy/local/bootstrap.py

.PHONY: help bootstrap migrate createsuperuser run test deploy-check fuzz chaos soak stop clean

help:
	@sed -n 's/^#   //p' Makefile

bootstrap:
	@$(BOOTSTRAP) bootstrap

migrate: bootstrap
	@$(BOOTSTRAP) migrate

createsuperuser: migrate
	@.venv/bin/python -m gateway.createsuperuser $(ARGS)

run: migrate
	@$(BOOTSTRAP) run

test:
	@$(BOOTSTRAP) --test bootstrap
	@$(BOOTSTRAP) --test migrate
	@$(BOOTSTRAP) --test pytest

deploy-check:
	@$(BOOTSTRAP) --test bootstrap
	@PYTEST_ARGS="tests/deploy $(PYTEST_ARGS)" $(BOOTSTRAP) --test pytest

fuzz:
	@$(BOOTSTRAP) --test bootstrap
	@FUZZ_MAX_EXAMPLES=$${FUZZ_MAX_EXAMPLES:-200} PYTEST_ARGS="tests/fuzz -s $(PYTEST_ARGS)" $(BOOTSTRAP) --test pytest

chaos:
	@$(BOOTSTRAP) --test bootstrap
	@.venv/bin/python tests/chaos/run_chaos.py $(ARGS)

DURATION ?= 1800
soak:
	@$(BOOTSTRAP) --test bootstrap
	@.venv/bin/python tests/soak/run_soak.py --duration $(DURATION) $(ARGS)

stop:
	@$(BOOTSTRAP) stop

clean:
	@$(BOOTSTRAP) clean
	find . -path ./.git -prune -o \( -name __pycache__ -o -name '*.egg-info' -o -name .pytest_cache \) -type d -print0 \
		| xargs -0 rm -rf
