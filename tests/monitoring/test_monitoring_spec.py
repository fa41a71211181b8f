"""The spec loader: versioned, typed, and every error names the field and its position."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from infra.monitoring.duration import Duration
from infra.monitoring.spec import SpecError, parse


def _text(root: Path) -> str:
    return (root / "monitoring/thresholds.yaml").read_text()


def test_the_committed_spec_holds_the_design_table(root: Path) -> None:
    spec = parse(_text(root))
    table = {a.name: (a.signal, a.op, a.threshold, a.severity) for a in spec.alerts}
    brief = {
        "PaymentFailureRateHigh": ("payment_failure_rate", ">", Decimal("0.1"), "critical"),
        "PaymentGatewayDown": ("target_up", "<", Decimal(1), "critical"),
        "PaymentDatabaseDown": ("database_up", "<", Decimal(1), "critical"),
        "PaymentProviderDown": ("provider_up", "<", Decimal(1), "critical"),
        "PendingVerificationsHigh": ("pending_verifications", ">", Decimal(100), "high"),
        "PaymentProviderDegraded": ("provider_success_rate", "<", Decimal("0.9"), "high"),
        "PaymentProcessingSlow": ("processing_time", ">", Decimal(60), "high"),
        "ReconciliationIssuesHigh": ("reconciliation_issues", ">", Decimal(50), "medium"),
    }
    assert {name: table[name] for name in brief} == brief
    # Beyond the brief: every other scrape target is watched too.
    assert {a.job for a in spec.alerts if a.signal == "target_up"} == {
        "payment-gateway", "payment-metrics-exporter", "payment-worker",
        "payment-reconciliation-worker"}
    assert spec.slo.objective == Decimal("0.995")
    assert next(a for a in spec.alerts if a.signal == "database_up").response_target == \
        Duration.parse("2m")
    # Every alert says how it is provoked on the running system.
    assert all(alert.drills for alert in spec.every_alert())


@pytest.mark.parametrize(("old", "new", "message"), [
    ("version: nilecare.monitoring/v2", "version: nilecare.monitoring/v9",
     r"thresholds.yaml:\d+:\d+: version: 'nilecare.monitoring/v9' is not a supported version"),
    ("    threshold: 100\n", "    threshold: lots\n",
     r":\d+:\d+: alerts\[4\]\.threshold: 'lots' is not a number"),
    ("    threshold: 0.9\n", "    threshold: 90\n",
     r"alerts\[5\]\.threshold: 90 is a ratio threshold and must be between 0 and 1"),
    ("    for: 10m\n    severity: high", "    for: ten minutes\n    severity: high",
     r"alerts\[4\]\.for: 'ten minutes' is not a duration"),
    ("    severity: medium\n    service: payment-reconciliation",
     "    severity: urgent\n    service: payment-reconciliation",
     r"alerts\[7\]\.severity: 'urgent' is not one of critical, high, medium"),
    ("    op: \">\"\n    threshold: 100", "    op: \">\"\n    threshhold: 100",
     r"alerts\[4\]\.threshhold: unknown field"),
    ("  objective: 0.995", "  objective: 99.5", r"slo\.objective: 99\.5 must be between 0 and 1"),
    ("    drill: {fault: stop, process: worker}", "    drill: {fault: unplug, process: worker}",
     r"alerts\[9\]\.drill\.fault: 'unplug' is not one of provider, stop, freeze"),
    ("    drill: {fault: stop, process: worker}",
     "    drill: {fault: stop, process: worker, scale: 20}",
     r"alerts\[9\]\.drill\.scale: only alerts that take 10m or more to fire or clear"),
    ("    drill: {fault: provider, provider: mtn_money,",
     "    drill: {fault: provider, provider: cash,",
     r"alerts\[3\]\.drill\.provider: 'cash' is not an electronic provider"),
    ("  reconciliation_issues: >-", "  reconciliation_issue: >-",
     r"signals: say what each signal measures; missing: reconciliation_issues"),
    ("repeat_interval: 30s, send_resolved: false, response_target: 5m}",
     "repeat_interval: 1m, send_resolved: false, response_target: 5m}",
     r"routes\.heartbeat\.repeat_interval: must be shorter than group_interval"),
    ("    job: payment-worker\n", "",
     r"alerts\[9\]: a target_up alert needs 'job'"),
])
def test_errors_name_the_field_and_position(root: Path, old: str, new: str, message: str) -> None:
    text = _text(root)
    assert old in text
    with pytest.raises(SpecError, match=message):
        parse(text.replace(old, new, 1), "thresholds.yaml")


def test_error_line_number_points_at_the_bad_value(root: Path) -> None:
    text = _text(root).replace("    threshold: 50\n", "    threshold: fifty\n")
    line = text.splitlines().index("    threshold: fifty") + 1
    with pytest.raises(SpecError, match=rf"thresholds.yaml:{line}:16: "):
        parse(text, "thresholds.yaml")


def test_empty_and_duplicate_specs_are_rejected(root: Path) -> None:
    with pytest.raises(SpecError, match="empty"):
        parse("", "t.yaml")
    text = _text(root).replace("name: PendingVerificationsHigh", "name: PaymentGatewayDown")
    with pytest.raises(SpecError, match="'PaymentGatewayDown' is used more than once"):
        parse(text)


def test_an_overlay_merges_over_the_spec_and_its_errors_name_the_overlay(root: Path) -> None:
    overlay = "alertmanager:\n  smtp: {smarthost: 'relay:25', require_tls: false}\n"
    spec = parse(_text(root), overlays=[(overlay, "site.yaml")])
    assert spec.alertmanager.smtp.smarthost == "relay:25"
    assert spec.alertmanager.smtp.to == "payments-ops@nilecare.sd"  # the rest is kept
    with pytest.raises(SpecError, match=r"site\.yaml:2:46: alertmanager\.smtp\.require_tls"):
        parse(_text(root), overlays=[(overlay.replace("false", "maybe"), "site.yaml")])


def test_environments_are_validated_and_chosen_by_name(root: Path) -> None:
    spec = parse(_text(root), environment="compose-sinks")
    assert spec.alertmanager.pagerduty_url == "http://alert-sink:8080/pagerduty"
    assert "compose-sinks" in spec.environments
    with pytest.raises(SpecError, match="no environment 'mars'"):
        parse(_text(root), environment="mars")
    broken = _text(root).replace("smtp: {smarthost: \"alert-sink:1025\"",
                                 "smtp: {smarthostt: \"alert-sink:1025\"")
    with pytest.raises(SpecError, match=r"smarthostt: unknown field"):
        parse(broken)


def test_a_critical_that_cannot_page_in_time_fails_the_render(root: Path) -> None:
    from infra.monitoring.render import render

    slow = _text(root).replace("    threshold: 0.1\n    for: 2m\n",
                               "    threshold: 0.1\n    for: 4m\n")
    with pytest.raises(SpecError, match=r"PaymentFailureRateHigh \(critical\): turn 30s \+ "
                                        r"floor 300s = 330s > 5m"):
        render(parse(slow))
