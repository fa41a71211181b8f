"""promtool unit tests generated from the spec: silent below, pending, then firing."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from infra.monitoring.duration import Duration
from infra.monitoring.rules import (
    SUMMARY_LINES,
    absent_alert,
    constants,
    rule_files,
    selector,
    slo_constants,
)
from infra.monitoring.signals import SIGNALS, Series, failure_series, values
from infra.monitoring.spec import AbsentAlert, BurnAlert, Spec, ThresholdAlert
from infra.monitoring.text import Format, expected, show_threshold

Test = dict[str, Any]
INTERVAL = 60  # seconds between input samples
MARGIN = 60  # how long past `for` the firing check looks


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def _at(seconds: int) -> str:
    return str(Duration.of(seconds))


def _samples(seconds: int) -> int:
    return seconds // INTERVAL + 2


def _selector(name: str, labels: Mapping[str, str]) -> str:
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


class _Case:
    """What one alert needs to be tested three ways."""

    def __init__(self, spec: Spec, name: str, for_: Duration, first_true: int,
                 labels: dict[str, str], annotations: dict[str, str]) -> None:
        self.step = spec.prometheus.evaluation_interval.seconds
        self.name = name
        self.for_ = for_
        self.first_true = first_true
        self.labels = labels
        self.annotations = annotations

    @property
    def end(self) -> int:
        return self.first_true + self.for_.seconds + MARGIN

    def silent(self, series: list[Series], what: str) -> Test:
        return {"name": f"{self.name}: {what} stays silent", "interval": _at(INTERVAL),
                "input_series": series, "alert_rule_test": [
                    {"eval_time": _at(self.end), "alertname": self.name, "exp_alerts": []}]}

    def pending(self, series: list[Series], what: str) -> Test:
        # The last evaluation before `for` runs out: a rule with a shorter `for` fires here.
        at = _at(max(self.first_true, self.first_true + self.for_.seconds - self.step))
        state = {**self.labels, "alertname": self.name, "alertstate": "pending"}
        return {"name": f"{self.name}: {what} for less than {self.for_} is only pending",
                "interval": _at(INTERVAL), "input_series": series,
                "alert_rule_test": [{"eval_time": at, "alertname": self.name, "exp_alerts": []}],
                "promql_expr_test": [{"expr": f'ALERTS{{alertname="{self.name}"}}',
                                      "eval_time": at,
                                      "exp_samples": [{"labels": _selector("ALERTS", state),
                                                       "value": 1}]}]}

    def firing(self, series: list[Series], what: str) -> Test:
        return {"name": f"{self.name}: {what} for longer than {self.for_} fires",
                "interval": _at(INTERVAL), "input_series": series, "alert_rule_test": [{
                    "eval_time": _at(self.end), "alertname": self.name, "exp_alerts": [
                        {"exp_labels": self.labels, "exp_annotations": self.annotations}]}]}


def _annotations(spec: Spec, summary: str, description: str, runbook: str) -> dict[str, str]:
    return {"summary": summary, "description": description,
            "runbook_url": spec.runbook_url(runbook)}


def threshold_tests(spec: Spec, alert: ThresholdAlert) -> list[Test]:
    signal = SIGNALS[alert.signal]
    silent, firing = values(alert)
    labels = {**signal.labels(spec), "severity": alert.severity, "service": alert.service}
    case_labels = signal.labels(spec)
    consts = constants(alert)
    case = _Case(spec, alert.name, alert.for_, signal.first_true, labels, _annotations(
        spec, expected(alert.summary, signal.fmt, firing, case_labels, consts),
        expected(alert.description, signal.fmt, firing, case_labels, consts), alert.runbook))
    n = _samples(case.end)
    above = f"{'above' if alert.op == '>' else 'below'} {consts['threshold']}"
    return [
        case.silent(signal.series(spec, silent, n), _show(silent, signal.fmt)),
        case.pending(signal.series(spec, firing, n), above),
        case.firing(signal.series(spec, firing, n), above),
    ]


def _show(value: Decimal, fmt: Format) -> str:
    return f"value {show_threshold(value, fmt)}"


def burn_tests(spec: Spec, burn: BurnAlert) -> list[Test]:
    budget = spec.slo.budget
    low = min(w.factor for w in burn.windows)
    high = max(w.factor for w in burn.windows)
    silent = low * budget * Decimal("0.9")
    firing = high * budget * Decimal("1.1")
    labels = {"severity": burn.severity, "service": "payment-gateway-service"}
    consts = slo_constants(spec)
    burn_rate = firing / budget
    case = _Case(spec, burn.name, burn.for_, 60, labels, _annotations(
        spec, expected(burn.summary, "burn", burn_rate, {}, consts),
        expected(burn.description, "burn", burn_rate, {}, consts), burn.runbook))
    n = _samples(case.end)
    return [
        case.silent(failure_series(spec, silent, n), f"burning at {low * Decimal('0.9')}x"),
        case.pending(failure_series(spec, firing, n), f"burning at {high * Decimal('1.1')}x"),
        case.firing(failure_series(spec, firing, n), f"burning at {high * Decimal('1.1')}x"),
    ]


def absent_tests(spec: Spec, absent: AbsentAlert) -> list[Test]:
    rule = absent_alert(spec, absent)
    labels = {**absent.selector, "severity": absent.severity, "service": absent.service}
    case = _Case(spec, absent.name, absent.for_, 0, labels, dict(rule["annotations"]))
    n = _samples(case.end)
    present = [{"series": selector(absent), "values": f"1+0x{n}"}]
    other = [{"series": 'up{job="promtool-placeholder"}', "values": f"1+0x{n}"}]
    return [case.silent(present, "the metric present"), case.pending(other, "the metric gone"),
            case.firing(other, "the metric gone")]


# Values the daily-summary test feeds, keyed by the series they are fed as.
SUMMARY_INPUT = {
    'nilecare_payments{provider="zain_cash", status="confirmed"}': "120",
    'nilecare_payments{provider="visa", status="failed"}': "7",
    'nilecare_pending_verifications{provider="cash"}': "3",
    'nilecare_reconciliation_unresolved_issues{type="amount_mismatch"}': "2",
    'nilecare_revenue_today{provider="zain_cash", currency="SDG"}': "1500.5",
    'nilecare_fees_today{provider="zain_cash", currency="SDG"}': "15.25",
}
SUMMARY_EXPECTED = {
    "Payments in the database": "127", "Failed or rejected": "7", "Pending verifications": "3",
    "Unresolved reconciliation issues": "2", "Revenue today (SDG)": "1500.50",
    "Revenue today (USD)": "n/a", "Fees today (SDG)": "15.25",
}


def meta_tests(spec: Spec) -> list[Test]:
    daily = spec.daily_summary
    description = "\n".join(f"{label}: {SUMMARY_EXPECTED[label]}" for label, _, _ in SUMMARY_LINES)
    return [
        {"name": "Watchdog always fires", "interval": "1m", "input_series": [
            {"series": 'up{job="promtool-placeholder"}', "values": "1+0x3"}],
         "alert_rule_test": [{"eval_time": "1m", "alertname": "Watchdog", "exp_alerts": [{
             "exp_labels": {"severity": "none", "service": "prometheus"},
             "exp_annotations": {
                 "summary": "Alerting pipeline heartbeat; always firing",
                 "description": "If the heartbeat receiver stops hearing this, Prometheus or "
                                "Alertmanager is down.",
                 "runbook_url": spec.runbook_url("watchdog")}}]}]},
        {"name": f"{daily.name} carries the day's numbers", "interval": "1m",
         "input_series": [{"series": s, "values": f"{v}+0x3"} for s, v in SUMMARY_INPUT.items()],
         "alert_rule_test": [{"eval_time": "1m", "alertname": daily.name, "exp_alerts": [{
             "exp_labels": {"severity": "info", "service": spec.service},
             "exp_annotations": {"summary": "Daily payments summary", "description": description,
                                 "runbook_url": spec.runbook_url(daily.runbook)}}]}]},
    ]


def _document(spec: Spec, tests: list[Test]) -> dict[str, Any]:
    return {"rule_files": [f"../{name}" for name in rule_files(spec)],
            "evaluation_interval": str(spec.prometheus.evaluation_interval), "tests": tests}


def test_files(spec: Spec) -> dict[str, dict[str, Any]]:
    """File name (under rules/tests/) → promtool test document; one file per alert."""
    files = {f"{snake(a.name)}_test.yml": _document(spec, threshold_tests(spec, a))
             for a in spec.alerts}
    files.update({f"{snake(b.name)}_test.yml": _document(spec, burn_tests(spec, b))
                  for b in spec.slo.burn_alerts})
    files["absent_test.yml"] = _document(
        spec, [t for a in spec.absent for t in absent_tests(spec, a)])
    files["meta_test.yml"] = _document(spec, meta_tests(spec))
    return files
