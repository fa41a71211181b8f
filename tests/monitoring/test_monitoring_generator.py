"""The generator: committed files match the spec, output is deterministic and well-formed."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from infra.monitoring.generated import HEADER, json_file, yaml_file
from infra.monitoring.render import drift, render, write
from infra.monitoring.rules import rule_files
from infra.monitoring.spec import Spec, ThresholdAlert
from infra.monitoring.text import decimal_text


def test_committed_files_match_the_spec(root: Path, files: dict[str, str]) -> None:
    assert drift(files, root) == []


def test_render_is_byte_for_byte_deterministic(spec: Spec, files: dict[str, str]) -> None:
    assert render(spec) == files


def test_every_generated_file_carries_the_header(files: dict[str, str]) -> None:
    for rel, text in files.items():
        assert HEADER in text.splitlines()[0] or HEADER in text, rel


def test_generator_refuses_empty_output() -> None:
    with pytest.raises(ValueError, match="refusing to write"):
        yaml_file({}, "x.yml")
    with pytest.raises(ValueError, match="refusing to write"):
        json_file([], "x.json")


def test_check_command_names_each_drifted_file(tmp_path: Path, root: Path,
                                               files: dict[str, str]) -> None:
    (tmp_path / "monitoring").mkdir()
    (tmp_path / "monitoring/thresholds.yaml").write_text(
        (root / "monitoring/thresholds.yaml").read_text())
    write(files, tmp_path)
    edited = tmp_path / "monitoring/rules/payments.yml"
    edited.write_text(edited.read_text() + "# hand edit\n")
    stale = tmp_path / "monitoring/dashboards/old.json"
    stale.write_text('{"description": "' + HEADER + '"}')
    (tmp_path / "alertmanager/alertmanager.yml").unlink()
    result = subprocess.run(
        [sys.executable, "-m", "infra.monitoring", "check", "--root", str(tmp_path)],
        capture_output=True, text=True, cwd=root, check=False)
    assert result.returncode == 1
    assert "monitoring/rules/payments.yml (differs)" in result.stderr
    assert "monitoring/dashboards/old.json (stale" in result.stderr
    assert "alertmanager/alertmanager.yml (missing)" in result.stderr
    ok = subprocess.run(
        [sys.executable, "-m", "infra.monitoring", "render", "--root", str(tmp_path)],
        capture_output=True, text=True, cwd=root, check=False)
    assert ok.returncode == 0
    assert drift(files, tmp_path) == []


def _with_threshold(spec: Spec, name: str, value: str) -> Spec:
    alerts = tuple(dataclasses.replace(a, threshold=Decimal(value)) if a.name == name else a
                   for a in spec.alerts)
    return dataclasses.replace(spec, alerts=alerts)


def test_editing_one_threshold_changes_its_rule_and_its_test_only(
    spec: Spec, files: dict[str, str]
) -> None:
    after = render(_with_threshold(spec, "PendingVerificationsHigh", "150"))
    changed = {rel for rel in files if files[rel] != after[rel]}
    assert changed == {"monitoring/rules/payments.yml",
                       "monitoring/rules/tests/pending_verifications_high_test.yml"}
    before_lines = set(files["monitoring/rules/payments.yml"].splitlines())
    new_lines = [ln for ln in after["monitoring/rules/payments.yml"].splitlines()
                 if ln not in before_lines]
    assert new_lines == [
        "    expr: sum(nilecare:pending_verifications:total) > 150",
        "      summary: More than 150 payments are waiting for verification",
        "      description: '{{ $value | printf \"%.0f\" }} payments are waiting for "
        "verification (threshold 150).'",
    ]


@pytest.mark.parametrize(("value", "text"), [
    ("0.1", "0.1"), ("0.10", "0.1"), ("100", "100"), ("1E+2", "100"), ("14.4", "14.4"),
    ("0.005", "0.005"),
])
def test_decimals_are_printed_exactly(value: str, text: str) -> None:
    assert decimal_text(Decimal(value)) == text


def test_thresholds_appear_exactly_in_rules(spec: Spec) -> None:
    text = yaml_file(rule_files(spec)["payments.yml"], "p")
    assert "ratio_rate5m > 0.1\n" in text
    assert "/ 0.005" in yaml_file(rule_files(spec)["slo.yml"], "s")
    assert not re.search(r"\d\.\d*9999|\d\.\d*0000\d", text)


def _rules(spec: Spec) -> list[dict[str, object]]:
    return [r for doc in rule_files(spec).values() for g in doc["groups"] for r in g["rules"]]


def test_every_alert_has_severity_summary_value_and_runbook(spec: Spec) -> None:
    alerts = [r for r in _rules(spec) if "alert" in r]
    assert len(alerts) == len(spec.alert_names())
    for rule in alerts:
        labels = rule["labels"]
        annotations = rule["annotations"]
        assert isinstance(labels, dict) and isinstance(annotations, dict)
        assert labels["severity"] in {"critical", "high", "medium", "none", "info"}, rule
        assert annotations["summary"] and annotations["description"], rule
        assert str(annotations["runbook_url"]).startswith(spec.runbook_base + "#"), rule
    for rule in alerts:
        if rule["alert"] in {a.name for a in (*spec.alerts, *spec.slo.burn_alerts)}:
            assert "$value" in str(rule["annotations"]["description"]), rule["alert"]  # type: ignore[index]


def test_every_ratio_is_guarded(spec: Spec) -> None:
    for rule in _rules(spec):
        expr = str(rule["expr"])
        if "record" in rule and ") / (" in expr:
            assert "> 0)" in expr, f"{rule['record']}: zero denominator not guarded"
            assert f">= {spec.min_events})" in expr, f"{rule['record']}: low traffic not guarded"


def test_watchdog_always_fires_and_absence_alerts_exist(spec: Spec) -> None:
    rules = {r.get("alert"): r for r in _rules(spec)}
    assert rules["Watchdog"]["expr"] == "vector(1)"
    absent = [r for r in rules.values() if str(r.get("expr", "")).startswith("absent(")]
    assert len(absent) == len(spec.absent) >= 5


def test_brief_metric_names_are_series_with_a_provider_label(spec: Spec) -> None:
    records = {str(r["record"]): str(r["expr"]) for r in _rules(spec) if "record" in r}
    for name in ("nilecare:payments:total", "nilecare:payments_failed:total",
                 "nilecare:payment_failure_rate:ratio_rate5m",
                 "nilecare:payment_processing_seconds:avg5m",
                 "nilecare:provider_success_rate:ratio", "nilecare:provider_response_seconds:avg",
                 "nilecare:provider_transactions:count", "nilecare:pending_verifications:total"):
        assert "provider" in records[name], name
    assert "nilecare:reconciliation_issues:total" in records
    assert not [n for n in records if re.search("visa|zain|mtn|bankak", n)]


def _worst_case(spec: Spec, alert: ThresholdAlert) -> int:
    """Seconds from the condition becoming true to the page: scrape + eval + for + wait."""
    route = spec.alertmanager.routes[alert.severity]
    wait = (spec.alertmanager.fast_group_wait if alert.name == spec.alertmanager.fast_alert
            else route.group_wait)
    p = spec.prometheus
    return p.scrape_interval.seconds + p.evaluation_interval.seconds + alert.for_.seconds + \
        wait.seconds


def test_timing_meets_the_response_targets(spec: Spec) -> None:
    for alert in spec.alerts:
        target = alert.response_target or spec.alertmanager.routes[alert.severity].response_target
        assert _worst_case(spec, alert) < target.seconds, alert.name
    database = next(a for a in spec.alerts if a.signal == "database_up")
    assert _worst_case(spec, database) < 120
    assert spec.alertmanager.routes["critical"].response_target.seconds <= 300
    assert spec.alertmanager.routes["high"].response_target.seconds <= 900


def test_digest_routes_look_often_enough_to_hit_the_daily_window(spec: Spec) -> None:
    doc = yaml.safe_load(render(spec)["alertmanager/alertmanager.yml"].split("\n", 1)[1])
    for route in doc["route"]["routes"]:
        if "active_time_intervals" in route:
            assert route["group_interval"] in {"5m", "10m", "15m", "30m"}, route
            assert route["repeat_interval"] == "23h", route


def test_every_runbook_link_has_a_section_in_the_docs(root: Path, spec: Spec) -> None:
    doc = (root / "README.md").read_text()
    anchors = {a.runbook for a in (*spec.alerts, *spec.slo.burn_alerts, *spec.absent)}
    anchors |= {spec.daily_summary.runbook, "watchdog"}
    missing = [a for a in sorted(anchors) if f'<a id="{a}"></a>' not in doc]
    assert not missing
    assert spec.runbook_base.endswith("README.md")
