# Two commands for a new user: `make run` and `make test`. Both build .venv on first use.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Lambda runs python3.12: use it where it works (a pyenv shim may exist without the version), else python3.
PYTHON ?= $(shell for p in python3.12 $$(ls -d $$HOME/.pyenv/versions/3.12*/bin/python3.12 2>/dev/null) python3; do \
             $$p -c 'import sys; assert sys.version_info >= (3, 11)' >/dev/null 2>&1 && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
STAGE ?= dev

.PHONY: help venv run test lint typecheck browser bench soak package deploy migrate policies clean

help:
	@echo "make run    start the whole service locally (moto, API on :$${ORDER_RELAY_PORT:-8000}, dispatcher, demo integrators)"
	@echo "make test   lint, type-check and run the whole test suite"
	@echo "make bench  AWS requests per order, dollars, cold start, scaling, fan-out, package (writes docs/benchmarks.md)"
	@echo "make soak   the soak-sized tests, then 2,000 orders from 20 clients through the local stack; nothing lost"
	@echo "make package / make deploy STAGE=dev   see docs/deploy-and-operations.md"

$(STAMP): requirements.txt requirements-dev.txt
	@test -n "$(PYTHON)" || { echo "Python 3.11+ is required (3.12 preferred: the Lambda runtime)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade "pip<26.3"  # chalice 1.34 needs pip<26.3
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m tools.localstack

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy app.py chalicelib tools infra bench tests

# The console's browser tests drive Debian's Chromium (no browser download). As root it is installed when missing;
# otherwise the target stops with the command to run, rather than skipping those tests.
CHROMIUM ?= /usr/bin/chromium

browser:
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Chromium for the console's browser tests (Debian package)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "The console's browser tests need Chromium at $(CHROMIUM): sudo apt-get install chromium"; exit 1; \
	  fi; }

test: lint typecheck browser
	CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest -q --durations=15

bench: $(STAMP)
	$(BIN)/python -m bench

# The soak-sized tests (marked `soak`, left out of `make test`), then the full-size run.
soak: $(STAMP)
	$(BIN)/python -m pytest -q -m soak
	$(BIN)/python -m tools.soak --orders $${SOAK_ORDERS:-2000} --clients $${SOAK_CLIENTS:-20}

package: $(STAMP)
	$(BIN)/python tools/package.py --stage $(STAGE)

# Give orders written under the first data model what the sharded layout reads (make deploy runs it when the
# orders table's indexes change); DRY_RUN=1 counts what would change.
migrate: $(STAMP)
	$(BIN)/python -m tools.migrate --stage $(STAGE) $(if $(DRY_RUN),--dry-run,)

deploy: $(STAMP)
	$(BIN)/python tools/deploy.py --stage $(STAGE)

policies: $(STAMP)
	$(BIN)/python -m infra.policies

clean:
	rm -rf $(VENV) build .local .pytest_cache .mypy_cache .ruff_cache
