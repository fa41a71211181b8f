"""Prometheus recording and alerting rules generated from the spec."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from infra.monitoring.duration import Duration
from infra.monitoring.signals import FAILED, SIGNALS, SUCCEEDED
from infra.monitoring.spec import BurnAlert, BurnWindow, Spec, ThresholdAlert
from infra.monitoring.text import decimal_text, show_duration, show_threshold, to_template

Rule = dict[str, Any]

COMPLETED = "nilecare_payments_completed_total"
SLO_ERRORS = "nilecare:slo_payment_errors"

# What the daily summary email reports: (line, query, printf format).
SUMMARY_LINES = (
    ("Payments in the database", "sum(nilecare_payments)", "%.0f"),
    ("Failed or rejected", f'sum(nilecare_payments{{status=~"{"|".join(FAILED)}"}})', "%.0f"),
    ("Pending verifications", "sum(nilecare_pending_verifications)", "%.0f"),
    ("Unresolved reconciliation issues", "sum(nilecare_reconciliation_unresolved_issues)", "%.0f"),
    ("Revenue today (SDG)", 'sum(nilecare_revenue_today{currency="SDG"})', "%.2f"),
    ("Revenue today (USD)", 'sum(nilecare_revenue_today{currency="USD"})', "%.2f"),
    ("Fees today (SDG)", 'sum(nilecare_fees_today{currency="SDG"})', "%.2f"),
)


def _re(names: tuple[str, ...]) -> str:
    return "|".join(names)


def guarded_ratio(num: str, den: str, by: str, events: str, minimum: int) -> str:
    """`num / den`, absent when the denominator is zero or the window saw too few events."""
    on = f"on ({by})" if by else "on ()"
    return f"({num}) / ({den} > 0) and {on} ({events} >= {minimum})"


def recording_rules(spec: Spec) -> list[Rule]:
    """The product brief's metric names as series, provider as a label."""
    terminal = f'{COMPLETED}{{status=~"{_re(FAILED + SUCCEEDED)}"}}'
    failed = f'{COMPLETED}{{status=~"{_re(FAILED)}"}}'
    hist = "nilecare_payment_processing_duration_seconds"
    by_cur = "sum by (provider, currency)"
    n = spec.min_events
    w = spec.rate_window
    return [
        {"record": "nilecare:payments:total", "expr": "sum by (provider) (nilecare_payments)"},
        {"record": "nilecare:payments_failed:total",
         "expr": f'sum by (provider) (nilecare_payments{{status=~"{_re(FAILED)}"}})'},
        {"record": "nilecare:payments:rate5m",
         "expr": f"sum by (provider) (rate(nilecare_payments_created_total[{w}]))"},
        {"record": "nilecare:payment_failure_rate:ratio_rate5m",
         "expr": guarded_ratio(f"sum by (provider) (rate({failed}[{w}]))",
                               f"sum by (provider) (rate({terminal}[{w}]))", "provider",
                               f"sum by (provider) (increase({terminal}[{w}]))", n)},
        {"record": "nilecare:payment_processing_seconds:avg5m",
         "expr": guarded_ratio(f"sum by (provider) (rate({hist}_sum[{w}]))",
                               f"sum by (provider) (rate({hist}_count[{w}]))", "provider",
                               f"sum by (provider) (increase({hist}_count[{w}]))", n)},
        {"record": "nilecare:pending_verifications:total",
         "expr": "sum by (provider) (nilecare_pending_verifications)"},
        {"record": "nilecare:reconciliation_issues:total",
         "expr": "sum by (type) (nilecare_reconciliation_unresolved_issues)"},
        {"record": "nilecare:provider_success_rate:ratio",
         "expr": "max by (provider, window) (nilecare_provider_success_ratio)"
                 " and on (provider, window)"
                 f" (sum by (provider, window) (nilecare_provider_calls) >= {n})"},
        {"record": "nilecare:provider_response_seconds:avg",
         "expr": "max by (provider, window) (nilecare_provider_response_time_avg_seconds)"},
        {"record": "nilecare:provider_transactions:count",
         "expr": "sum by (provider, window) (nilecare_provider_transactions)"},
        {"record": "nilecare:revenue_net:today",
         "expr": f"{by_cur} (nilecare_revenue_today) - {by_cur} (nilecare_fees_today)"
                 f" - ({by_cur} (nilecare_refunds_today)"
                 f" or {by_cur} (nilecare_revenue_today) * 0)"},
    ]


def _alert(spec: Spec, name: str, expr: str, for_: Duration, severity: str, service: str,
           summary: str, description: str, runbook: str) -> Rule:
    rule: Rule = {"alert": name, "expr": expr}
    if for_.seconds:
        rule["for"] = str(for_)
    rule["labels"] = {"severity": severity, "service": service}
    rule["annotations"] = {"summary": summary, "description": description,
                           "runbook_url": spec.runbook_url(runbook)}
    return rule


def constants(alert: ThresholdAlert) -> dict[str, str]:
    return {"threshold": show_threshold(alert.threshold, SIGNALS[alert.signal].fmt)}


def threshold_alert(spec: Spec, alert: ThresholdAlert) -> Rule:
    signal = SIGNALS[alert.signal]
    query = signal.query(spec, alert)
    expr = f"{query} {alert.op} {decimal_text(alert.threshold)}{signal.unless(spec, alert)}"
    consts = constants(alert)
    description = to_template(alert.description, signal.fmt, consts)
    if alert.missing is not None:
        # A job with no target at all is the same outage, said differently (absent() keeps
        # the job label and has no instance).
        expr = f"{expr} or absent({query})"
        description = (f"{{{{ if $labels.instance }}}}{description}{{{{ else }}}}"
                       f"{to_template(alert.missing, signal.fmt, consts)}{{{{ end }}}}")
    return _alert(spec, alert.name, expr, alert.for_, alert.severity, alert.service,
                  to_template(alert.summary, signal.fmt, consts), description, alert.runbook)


def burn_constants(spec: Spec, window: BurnWindow) -> dict[str, str]:
    """What a burn alert's text may name: the objective, the window pair that fired, and how
    soon the budget is gone at exactly the pair's factor."""
    exhaustion = Decimal(spec.slo.period.seconds) / window.factor
    return {"objective": show_threshold(spec.slo.objective, "percent"),
            "long": str(window.long), "short": str(window.short),
            "factor": show_threshold(window.factor, "burn"),
            "exhaustion": show_duration(exhaustion)}


def burn_alert_expr(window: BurnWindow) -> str:
    factor = decimal_text(window.factor)
    return (f"{SLO_ERRORS}:burnrate{window.long} > {factor}"
            f" and {SLO_ERRORS}:burnrate{window.short} > {factor}")


def burn_alerts(spec: Spec, burn: BurnAlert) -> list[Rule]:
    """One rule per window pair, labelled with its long window, so the text names the window
    that fired and the burn rate it saw."""
    rules = []
    for window in burn.windows:
        consts = burn_constants(spec, window)
        rule = _alert(spec, burn.name, burn_alert_expr(window), burn.for_, burn.severity,
                      burn.service, to_template(burn.summary, "burn", consts),
                      to_template(burn.description, "burn", consts), burn.runbook)
        rule["labels"]["window"] = str(window.long)
        rules.append(rule)
    return rules


def slo_rules(spec: Spec) -> list[Rule]:
    slo = spec.slo
    terminal = f'{COMPLETED}{{status=~"{_re(FAILED + SUCCEEDED)}"}}'
    failed = f'{COMPLETED}{{status=~"{_re(FAILED)}"}}'
    budget = decimal_text(slo.budget)
    rules: list[Rule] = [
        {"record": "nilecare:slo_payment:objective",
         "expr": f"vector({decimal_text(slo.objective)})"},
    ]
    for w in slo.windows():
        rules.append({"record": f"{SLO_ERRORS}:ratio_rate{w}", "expr": guarded_ratio(
            f"sum(rate({failed}[{w}]))", f"sum(rate({terminal}[{w}]))", "",
            f"sum(increase({terminal}[{w}]))", spec.min_events)})
    for w in slo.windows():
        rules.append({"record": f"{SLO_ERRORS}:burnrate{w}",
                      "expr": f"{SLO_ERRORS}:ratio_rate{w} / {budget}"})
    rules.append({"record": "nilecare:slo_payment_error_budget:remaining",
                  "expr": f"1 - {SLO_ERRORS}:ratio_rate{slo.period} / {budget}"})
    for burn in slo.burn_alerts:
        rules.extend(burn_alerts(spec, burn))
    return rules


def summary_description() -> str:
    lines = [f'{label}: {{{{ with query `{q}` }}}}{{{{ . | first | value | printf "{fmt}" }}}}'
             "{{ else }}n/a{{ end }}" for label, q, fmt in SUMMARY_LINES]
    return "\n".join(lines)


def meta_rules(spec: Spec) -> list[Rule]:
    daily = spec.daily_summary
    watchdog: Rule = {
        "alert": "Watchdog", "expr": "vector(1)",
        "labels": {"severity": "none", "service": "prometheus"},
        "annotations": {
            "summary": "Alerting pipeline heartbeat; always firing",
            "description": "If the heartbeat receiver stops hearing this, Prometheus or "
                           "Alertmanager is down.",
            "runbook_url": spec.runbook_url("watchdog"),
        },
    }
    summary = _alert(spec, daily.name, "vector(1)", Duration.of(0), "info", spec.service,
                     "Daily payments summary", summary_description(), daily.runbook)
    return [watchdog, summary]


def rule_files(spec: Spec) -> dict[str, dict[str, Any]]:
    """File name → rule file document, one file per subsystem."""
    interval = str(spec.prometheus.evaluation_interval)
    return {
        "payments.yml": {"groups": [{"name": "nilecare-payments", "interval": interval, "rules": [
            *recording_rules(spec), *(threshold_alert(spec, a) for a in spec.alerts)]}]},
        "slo.yml": {"groups": [{"name": "nilecare-slo", "interval": interval,
                                "rules": slo_rules(spec)}]},
        "meta.yml": {"groups": [{"name": "nilecare-meta", "interval": interval,
                                 "rules": meta_rules(spec)}]},
    }
