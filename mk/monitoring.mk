# Monitoring as code: included by the main Makefile, which sets PY (.venv/bin/python).
# monitoring/thresholds.yaml is the one spec; everything below is generated from it.

.PHONY: render-monitoring render-check-monitoring test-monitoring drill

render-monitoring: install ## regenerate rules, promtool tests, Alertmanager config and dashboards
	$(PY) -m infra.monitoring render

render-check-monitoring: install ## fail, naming each file, when generated files drift from the spec
	$(PY) -m infra.monitoring check

# promtool check/test rules, amtool check-config and route tests, golden-file tests and
# the delivery test (real Prometheus + Alertmanager). Needs Debian packages `prometheus`
# and `prometheus-alertmanager`.
test-monitoring: system-deps render-check-monitoring
	$(PY) -m pytest tests/monitoring -q

## Fire drills: the real processes, Prometheus and Alertmanager, every alert's fault (about 20 min)
drill: system-deps install render-check-monitoring
	$(PY) -m tests.drill $(if $(ONLY),$(foreach a,$(ONLY),--only $(a)),)
