# NileCare Payments. `make run` starts the embedded default; `make test` runs everything.
SHELL := /bin/bash
PY := .venv/bin/python
DEPS_HASH := $(shell cat pyproject.toml constraints.txt | sha1sum | cut -c1-12)
VENV_STAMP := .venv/.installed-dev-$(DEPS_HASH)
RUN_STAMP := .venv/.installed-run-$(DEPS_HASH)

.PHONY: help install system-deps run test lint typecheck pytest unit integration render render-check clean

## List every target with its one-line description
help:
	@grep -hE '^## ' $(MAKEFILE_LIST) -A1 | grep -v '^--' | paste - - | sed 's/## //' | \
	  awk -F'\t' '{split($$2,a,":"); printf "  %-22s %s\n", a[1], $$1}'

## Create .venv and install the pinned dependencies (constraints.txt pins the whole tree)
install: $(VENV_STAMP)

$(VENV_STAMP): pyproject.toml constraints.txt
	@python3 -c 'import ensurepip' 2>/dev/null || { echo "python3 venv is missing: apt-get install -y python3-venv" >&2; exit 1; }
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip==25.3
	$(PY) -m pip install -q -c constraints.txt -e '.[infra,dev]'
	rm -f .venv/.installed-* && touch $@ $(RUN_STAMP)

# `make run` needs only the service's own dependencies, not Pulumi or the test tools.
$(RUN_STAMP): pyproject.toml constraints.txt
	@python3 -c 'import ensurepip' 2>/dev/null || { echo "python3 venv is missing: apt-get install -y python3-venv" >&2; exit 1; }
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip==25.3
	$(PY) -m pip install -q -c constraints.txt -e .
	touch $@

## The Debian packages the tests need (as root: installed; otherwise: the apt-get line to run)
system-deps:
	tools/system-deps test

## Run the product on its embedded default (SQLite, in-process cache, provider simulator)
run: $(RUN_STAMP)
	.venv/bin/nilecare dev

## The whole suite: lint, types, unit/integration/e2e/infra/monitoring tests, drift checks
test: system-deps install lint typecheck render-check pytest

## ruff on everything
lint: install
	.venv/bin/ruff check service infra tests bench

## mypy --strict on service/, infra/, tests/ and bench/
typecheck: install
	.venv/bin/mypy

## pytest on every tier except the container run (the test step of `make test`)
pytest: system-deps install
	$(PY) -m pytest -q -p no:cacheprovider tests --ignore=tests/e2e/containers --ignore=tests/e2e/swarm

## Only the unit tests (tests/unit: no I/O)
unit: install
	$(PY) -m pytest -q tests/unit

## Only the integration tests (tests/integration: throwaway MariaDB and Redis)
integration: system-deps install
	$(PY) -m pytest -q tests/integration

## Regenerate every generated file (rules, routes, dashboards, compose, swarm stack, env.example's providers, openapi.json)
render: render-monitoring render-compose render-swarm render-env render-openapi

## Fail, naming the file, when a generated file differs from its source
render-check: render-check-monitoring render-check-compose render-check-swarm render-check-env render-check-openapi

## Remove .venv, var and the tools' caches
clean:
	rm -rf .venv var .mypy_cache .ruff_cache .pytest_cache

-include mk/*.mk
