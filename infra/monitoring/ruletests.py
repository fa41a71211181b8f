"""promtool unit tests generated from the spec: silent below, pending, then firing."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from infra.monitoring.duration import Duration
from infra.monitoring.rules import SUMMARY_LINES, burn_constants, constants, rule_files
from infra.monitoring.signals import SIGNALS, TEST_PROVIDER, Series, failure_series, values
from infra.monitoring.spec import BurnAlert, BurnWindow, Spec, ThresholdAlert
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
    case_labels = signal.labels(spec, alert)
    labels = {**case_labels, "severity": alert.severity, "service": alert.service}
    consts = constants(alert)
    summary = expected(alert.summary, signal.fmt, firing, case_labels, consts)
    case = _Case(spec, alert.name, alert.for_, signal.first_true, labels, _annotations(
        spec, summary, expected(alert.description, signal.fmt, firing, case_labels, consts),
        alert.runbook))
    n = _samples(case.end)
    above = f"{'above' if alert.op == '>' else 'below'} {consts['threshold']}"
    tests = [
        case.silent(signal.series(spec, alert, silent, n), _show(silent, signal.fmt)),
        case.pending(signal.series(spec, alert, firing, n), above),
        case.firing(signal.series(spec, alert, firing, n), above),
    ]
    if signal.unless(spec, alert):
        down = next(a for a in spec.alerts if a.signal == "provider_up")
        page = {"series": _selector("ALERTS", {
            "alertname": down.name, "alertstate": "firing", "provider": TEST_PROVIDER,
            "severity": down.severity, "service": down.service}), "values": f"1+0x{n}"}
        tests.append(case.silent([*signal.series(spec, alert, firing, n), page],
                                 f"{above} while {down.name} fires"))
    if alert.missing is not None:
        # No target for the job at all: the same alert, saying so.
        gone = {k: v for k, v in labels.items() if k != "instance"}
        missing = _Case(spec, alert.name, alert.for_, 0, gone, _annotations(
            spec, summary, expected(alert.missing, signal.fmt, 1, gone, consts), alert.runbook))
        other = [{"series": 'up{job="promtool-placeholder"}', "values": f"1+0x{n}"}]
        tests.append(missing.firing(other, f"no {alert.job} target"))
    return tests


def _show(value: Decimal, fmt: Format) -> str:
    return f"value {show_threshold(value, fmt)}"


def burn_tests(spec: Spec, burn: BurnAlert) -> list[Test]:
    """A steady error ratio just under a pair's factor fires only the pairs with a lower
    factor; just over it, that pair too, each alert naming its own windows and burn rate."""
    budget = spec.slo.budget
    pairs = sorted(burn.windows, key=lambda w: w.factor)
    step = spec.prometheus.evaluation_interval.seconds
    end = 60 + burn.for_.seconds + MARGIN
    n = _samples(end)

    def alert(window: BurnWindow, ratio: Decimal) -> dict[str, Any]:
        consts = burn_constants(spec, window)
        return {"exp_labels": {"severity": burn.severity, "service": burn.service,
                               "window": str(window.long)},
                "exp_annotations": _annotations(
                    spec, expected(burn.summary, "burn", ratio / budget, {}, consts),
                    expected(burn.description, "burn", ratio / budget, {}, consts),
                    burn.runbook)}

    tests: list[Test] = []
    for index, window in enumerate(pairs):
        for share, verb in ((Decimal("0.9"), "under"), (Decimal("1.1"), "over")):
            ratio = window.factor * budget * share
            firing = pairs[:index + 1] if verb == "over" else pairs[:index]
            tests.append({
                "name": f"{burn.name}: just {verb} {window.factor}x fires "
                        f"{', '.join(str(w.long) for w in firing) or 'nothing'}",
                "interval": _at(INTERVAL), "input_series": failure_series(spec, ratio, n),
                "alert_rule_test": [{"eval_time": _at(end), "alertname": burn.name,
                                     "exp_alerts": [alert(w, ratio) for w in firing]}]})
    lowest = pairs[0]
    at = _at(60 + burn.for_.seconds - step)
    tests.append({
        "name": f"{burn.name}: over {lowest.factor}x for less than {burn.for_} is only pending",
        "interval": _at(INTERVAL),
        "input_series": failure_series(spec, lowest.factor * budget * Decimal("1.1"), n),
        "alert_rule_test": [{"eval_time": at, "alertname": burn.name, "exp_alerts": []}]})
    return tests


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
    files["meta_test.yml"] = _document(spec, meta_tests(spec))
    return files
