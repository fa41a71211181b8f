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
from infra.monitoring.spec import Spec
from infra.monitoring.text import decimal_text
from infra.monitoring.timing import timings


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
    # A burn alert is one rule per window pair, so its text names the windows that fired.
    pairs = sum(len(b.windows) - 1 for b in spec.slo.burn_alerts)
    assert len(alerts) == len(spec.alert_names()) + pairs
    for rule in alerts:
        labels = rule["labels"]
        annotations = rule["annotations"]
        assert isinstance(labels, dict) and isinstance(annotations, dict)
        assert labels["severity"] in {"critical", "high", "medium", "none", "info"}, rule
        assert annotations["summary"] and annotations["description"], rule
        assert str(annotations["runbook_url"]).startswith(spec.runbook_base + "#"), rule
    # The description shows the quantity that fired: the value, or for an up/down signal
    # the target or provider that does not answer.
    subject = {"target_up": "$labels.instance", "provider_up": "$labels.provider"}
    needed = {a.name: subject.get(a.signal, "$value") for a in spec.alerts}
    needed |= {b.name: "$value" for b in spec.slo.burn_alerts}
    for rule in alerts:
        if rule["alert"] in needed:
            description = str(rule["annotations"]["description"])  # type: ignore[index]
            assert needed[str(rule["alert"])] in description, rule["alert"]


def test_every_ratio_is_guarded(spec: Spec) -> None:
    for rule in _rules(spec):
        expr = str(rule["expr"])
        if "record" in rule and ") / (" in expr:
            assert "> 0)" in expr, f"{rule['record']}: zero denominator not guarded"
            assert f">= {spec.min_events})" in expr, f"{rule['record']}: low traffic not guarded"


def test_watchdog_always_fires_and_every_target_alert_covers_a_vanished_target(
        spec: Spec) -> None:
    rules = {r.get("alert"): r for r in _rules(spec)}
    assert rules["Watchdog"]["expr"] == "vector(1)"
    for alert in spec.alerts:
        if alert.signal == "target_up":
            assert rules[alert.name]["expr"] == (
                f'up{{job="{alert.job}"}} < 1 or absent(up{{job="{alert.job}"}})')


def test_burn_alerts_name_their_windows_and_the_burn_rate(spec: Spec) -> None:
    burns = [r for r in _rules(spec) if r.get("alert") == "PaymentSLOFastBurn"]
    assert [r["labels"]["window"] for r in burns] == ["1h", "6h"]  # type: ignore[index]
    fast = str(burns[0]["annotations"]["description"])  # type: ignore[index]
    assert "over 1h (and over 5m)" in fast and "2.1 days" in fast
    assert "{{ $value | printf \"%.1f\" }}x" in fast
    assert "over 6h (and over 30m)" in str(burns[1]["annotations"]["description"])  # type: ignore[index]


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


def test_timing_meets_the_response_targets_with_every_window_counted(spec: Spec) -> None:
    found = {t.name: t for t in timings(spec)}
    assert all(t.worst_case <= t.target.seconds for t in found.values())
    failure = found["PaymentFailureRateHigh"]
    assert (failure.turn, failure.floor) == (30, 15 + 15 + 120 + 30)  # 5m x 10%, then the pipe
    database = found["PaymentDatabaseDown"]
    assert database.worst_case <= 120 and database.turn == spec.prometheus.scrape_timeout.seconds
    assert found["PaymentSLOFastBurn"].turn == 259  # 1h x 14.4 x 0.5% budget
    # A gateway that is not discovered at all turns when its series go stale: discovery
    # (10 s) and the 2 x 15 s + 10% Prometheus waits before writing stale markers, of which
    # the floor already counts one scrape.
    assert found["PaymentGatewayDown"].turn == 10 + 17
    assert spec.alertmanager.routes["critical"].response_target.seconds <= 300
    assert spec.alertmanager.routes["high"].response_target.seconds <= 900


def test_the_heartbeat_is_sent_on_every_flush(spec: Spec) -> None:
    beat = spec.alertmanager.routes["heartbeat"]
    assert beat.repeat_interval < beat.group_interval


def test_digest_routes_look_often_enough_to_hit_the_daily_window(spec: Spec) -> None:
    doc = yaml.safe_load(render(spec)["alertmanager/alertmanager.yml"].split("\n", 1)[1])
    for route in doc["route"]["routes"]:
        if "active_time_intervals" in route:
            assert route["group_interval"] in {"5m", "10m", "15m", "30m"}, route
            assert route["repeat_interval"] == "23h", route


def test_every_runbook_link_has_a_section_in_the_runbook(root: Path, spec: Spec) -> None:
    doc = (root / "docs/operators/runbook.md").read_text()
    anchors = {a.runbook for a in spec.every_alert()}
    anchors |= {spec.daily_summary.runbook, "watchdog"}
    missing = [a for a in sorted(anchors) if f'<a id="{a}"></a>' not in doc]
    assert not missing
    assert spec.runbook_base.endswith("/docs/operators/runbook.md")
