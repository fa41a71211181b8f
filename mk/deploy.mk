# Deployment targets (included by the main Makefile): compose render, local secrets, infra tests,
# and the container end-to-end run.
PY ?= .venv/bin/python
COMPOSE_FILE ?= docker-compose.payment.yml

.PHONY: e2e-swarm render-swarm render-check-swarm render-compose render-check-compose render-env render-check-env secrets test-infra e2e-containers

## Render the swarm stack (deploy/swarm/: stack.yml, simulator.yml, haproxy.cfg) from infra/topology/
render-swarm: install
	$(PY) -m infra.swarm

## Fail when a committed file under deploy/swarm/ drifts from infra/topology/
render-check-swarm: install
	$(PY) -m infra.swarm --check

## Render docker-compose.payment.yml from infra/topology/
render-compose: install
	$(PY) -m infra.compose --output $(COMPOSE_FILE)

## Fail when the committed compose file drifts from infra/topology/
render-check-compose: install
	$(PY) -m infra.compose --check --output $(COMPOSE_FILE)

## Rewrite env.example's provider block from service/domain/catalog.py
render-env: install
	$(PY) -m infra.envexample

## Fail when env.example's provider block drifts from the provider catalogue
render-check-env: install
	$(PY) -m infra.envexample --check

## Write missing local secret files under ./secrets/ (git-ignored); FORCE=1 rotates them all
secrets: install
	$(PY) -m infra.compose --write-secrets secrets $(if $(FORCE),--force,)

## Pulumi mock tests for both stacks and the compose checks (no Docker daemon needed)
test-infra: install
	$(PY) -m pytest tests/infra -q

## Six containers for real: dockerd, debootstrap base, images, compose up, testinfra, restarts
e2e-containers: install
	tools/system-deps containers
	$(PY) -m pytest tests/e2e/containers -q -p no:cacheprovider --timeout=1500

## The stack on a real one-node swarm: swarm init, stack deploy, rolling update, rollback, killed tasks
e2e-swarm: install
	tools/system-deps containers
	$(PY) -m pytest tests/e2e/swarm -q -rP -p no:cacheprovider --timeout=1500
