# Monitoring as code: included by the main Makefile, which sets PY (.venv/bin/python).
# monitoring/thresholds.yaml is the one spec; everything below is generated from it.

.PHONY: render-monitoring render-check-monitoring test-monitoring drill drill-swarm

## Regenerate rules, promtool tests, Alertmanager config and dashboards from the spec
render-monitoring: install
	$(PY) -m infra.monitoring render

## Fail, naming each file, when generated monitoring files drift from the spec
render-check-monitoring: install
	$(PY) -m infra.monitoring check

# promtool check/test rules, amtool check-config and route tests, golden-file tests and
# the delivery test (real Prometheus + Alertmanager). Needs Debian packages `prometheus`
# and `prometheus-alertmanager`.
## Render-check, then the monitoring tests: promtool, amtool, golden files, route and panel checks
test-monitoring: system-deps render-check-monitoring
	$(PY) -m pytest tests/monitoring -q

## Fire drills: the real processes, Prometheus and Alertmanager, every alert's fault (about 20 min)
drill: system-deps install render-check-monitoring
	$(PY) -m tests.drill $(if $(ONLY),$(foreach a,$(ONLY),--only $(a)),)

## The same fire drills against the stack on a one-node swarm (dockerd; about 30 min; not in CI)
drill-swarm: system-deps install render-check-monitoring
	tools/system-deps containers
	$(PY) -m tests.drill --swarm $(if $(ONLY),$(foreach a,$(ONLY),--only $(a)),)
