"""Cross-checks: rules and panels only use what the service exposes, and panels fit the grid."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from infra.monitoring.dashboards import DATASOURCE_VAR, PROVIDER_VAR
from infra.monitoring.spec import Spec
from service import metrics

# Series Prometheus itself makes: `up` per scrape target, ALERTS for alert state.
BUILTIN = {"up", "ALERTS"}


def _names(expr: str) -> set[str]:
    found: set[str] = set()

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            found.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def _grafana(expr: str) -> str:
    """A panel query with Grafana's variables replaced as Grafana would before sending."""
    return expr.replace(f"${PROVIDER_VAR}", ".*").replace("$__rate_interval", "5m")


def _rules(root: Path) -> list[dict[str, Any]]:
    return [r for path in sorted((root / "monitoring/rules").glob("*.yml"))
            for g in yaml.safe_load(path.read_text())["groups"] for r in g["rules"]]


def _dashboards(root: Path) -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text())
            for p in sorted((root / "monitoring/dashboards").glob("*.json"))}


def _panel_exprs(root: Path) -> list[tuple[str, str]]:
    return [(f"{name}: {panel['title']}", _grafana(t["expr"]))
            for name, dash in _dashboards(root).items() for panel in dash["panels"]
            for t in panel.get("targets", [])]


def test_every_metric_a_rule_uses_is_exposed_by_the_service(root: Path) -> None:
    rules = _rules(root)
    recorded = {r["record"] for r in rules if "record" in r}
    allowed = metrics.exposed_series() | recorded | BUILTIN
    unknown = {f"{r.get('record') or r.get('alert')}: {name}"
               for r in rules for name in _names(r["expr"]) - allowed}
    assert not unknown, sorted(unknown)


def test_every_metric_a_panel_uses_is_exposed_by_the_service(root: Path) -> None:
    recorded = {r["record"] for r in _rules(root) if "record" in r}
    allowed = metrics.exposed_series() | recorded | BUILTIN
    unknown = [f"{title}: {name}" for title, expr in _panel_exprs(root)
               for name in _names(expr) - allowed]
    assert not unknown, unknown


def test_the_exposed_catalogue_is_the_real_one() -> None:
    """Guards the cross-checks above against an empty or renamed catalogue."""
    series = metrics.exposed_series()
    assert "nilecare_payments_completed_total" in series
    assert "nilecare_payment_processing_duration_seconds_bucket" in series
    assert "nilecare_payments_completed" not in series


def test_every_panel_query_parses(root: Path) -> None:
    exprs = _panel_exprs(root)
    assert len(exprs) > 20
    for title, expr in exprs:
        try:
            promql_parser.parse(expr)
        except ValueError as exc:
            pytest.fail(f"{title}: {expr}: {exc}")


def test_a_misspelt_metric_would_be_caught() -> None:
    assert _names('sum(rate(nilecare_payment_completed_total{provider=~".*"}[5m]))') - \
        metrics.exposed_series() == {"nilecare_payment_completed_total"}


def _overlaps(a: dict[str, int], b: dict[str, int]) -> bool:
    return (a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
            and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"])


@pytest.mark.parametrize("name", ["ops.json", "finance.json", "slo.json"])
def test_panels_fit_the_grid_and_do_not_overlap(root: Path, name: str) -> None:
    panels = _dashboards(root)[name]["panels"]
    for p in panels:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["h"] > 0 and g["x"] + g["w"] <= 24, p["title"]
    for i, a in enumerate(panels):
        for b in panels[i + 1:]:
            assert not _overlaps(a["gridPos"], b["gridPos"]), (a["title"], b["title"])


def test_dashboards_have_stable_uids_and_the_variables(root: Path) -> None:
    dashboards = _dashboards(root)
    assert {d["uid"] for d in dashboards.values()} == {
        "nilecare-ops", "nilecare-finance", "nilecare-slo"}
    for name, dash in dashboards.items():
        variables = {v["name"]: v for v in dash["templating"]["list"]}
        assert variables[DATASOURCE_VAR]["type"] == "datasource", name
        assert variables[PROVIDER_VAR]["includeAll"] is True, name
        # A series every provider has, manual ones included (cash, cheque, bank transfer).
        assert "nilecare_pending_verifications" in str(variables[PROVIDER_VAR]["query"]), name
        for panel in dash["panels"]:
            if panel["type"] != "row":
                assert panel["datasource"]["uid"] == f"${{{DATASOURCE_VAR}}}", panel["title"]
        ids = [p["id"] for p in dash["panels"]]
        assert len(ids) == len(set(ids)), name


def test_dashboards_cover_the_brief(root: Path) -> None:
    titles = {p["title"] for d in _dashboards(root).values() for p in d["panels"]}
    for needed in ("Payment overview", "Provider health", "Verification queue", "Reconciliation",
                   "Revenue", "Error budget left (30d)", "Burn rate", "Net revenue today",
                   "Fees today by provider"):
        assert needed in titles


def test_prometheus_scrapes_every_process_the_deployment_model_declares(root: Path) -> None:
    """Every process that counts events or reads business state is a job, found through the
    target files generated from infra/topology/ (the compose and Pulumi networks)."""
    doc = yaml.safe_load((root / "monitoring/prometheus.yml").read_text())
    files = {j["job_name"]: j["file_sd_configs"][0]["files"] for j in doc["scrape_configs"]}
    assert files == {job: [f"/etc/prometheus/targets/{job}.yml"] for job in (
        "alertmanager", "payment-gateway", "payment-metrics-exporter",
        "payment-reconciliation-worker", "payment-worker")}
    targets = {path.stem: yaml.safe_load(path.read_text())[0]["targets"]
               for path in (root / "monitoring/targets").glob("*.yml")}
    assert targets == {"payment-gateway": ["payment-gateway-service:7001"],
                       "payment-worker": ["payment-worker:9102"],
                       "payment-reconciliation-worker": ["payment-reconciliation-worker:9103"],
                       "payment-metrics-exporter": ["payment-metrics-exporter:9101"],
                       "alertmanager": ["alertmanager:9093"]}
    assert doc["alerting"]["alertmanagers"][0]["file_sd_configs"][0]["files"] == [
        "/etc/prometheus/targets/alertmanager.yml"]
    assert [Path(f).name for f in doc["rule_files"]] == ["payments.yml", "slo.yml", "meta.yml"]


def test_the_exporter_gives_up_on_the_database_well_inside_the_scrape_timeout(
        spec: Spec) -> None:
    """Otherwise a hung database would time the scrape out (a stale target) instead of
    reading as nilecare_database_up 0."""
    from service.settings import Settings

    field = Settings.model_fields["exporter_timeout_seconds"]
    highest = next(m.le for m in field.metadata if hasattr(m, "le"))
    assert field.default * 2 <= spec.prometheus.scrape_timeout.seconds
    assert highest < spec.prometheus.scrape_timeout.seconds


def test_the_spec_knows_the_services_provider_timeout(spec: Spec) -> None:
    from service.settings import Settings

    default = Settings.model_fields["provider_timeout_seconds"].default
    assert spec.provider_timeout.seconds == default
