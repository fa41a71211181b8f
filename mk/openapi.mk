# The published API contract (included by the main Makefile).
PY ?= .venv/bin/python

.PHONY: render-openapi render-check-openapi

## Write openapi.json, the API contract, from the gateway application itself
render-openapi: install
	$(PY) -m infra.openapi

## Fail when the committed openapi.json differs from what the gateway publishes
render-check-openapi: install
	$(PY) -m infra.openapi --check
