"""The catalogue of signals a threshold can watch: its PromQL, where its data comes from, how
long it takes to turn, and how to fake it in a test. What each measures is written in the
spec (`signals:`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from infra.monitoring.spec import Spec, ThresholdAlert
from infra.monitoring.text import Format, decimal_text

Source = Literal["events", "exporter", "prometheus"]

# Test inputs: the provider and reconciliation type every generated test uses.
TEST_PROVIDER = "zain_cash"
FAILED = ("failed", "rejected")
SUCCEEDED = ("confirmed", "verified")
PROCESSING = "nilecare_payment_processing_duration_seconds"

Series = dict[str, str]  # promtool input series: {"series": ..., "values": ...}


@dataclass(frozen=True)
class Signal:
    """How one signal is queried, printed and synthesised."""

    query: Callable[[Spec, ThresholdAlert], str]
    # Who produces the data: event counters of the gateway and workers, the exporter's
    # database reads (blind while the database is down), or Prometheus itself.
    source: Source
    # Seconds from a fault at full strength until the signal crosses its threshold.
    turn: Callable[[Spec, ThresholdAlert], int]
    fmt: Format
    step: Decimal
    # Whether the value at exactly the threshold can be fed to a test: true for gauges the
    # test sets directly, false for values derived from counter rates (float rounding).
    exact: bool
    # Seconds from the start of a test until the value exists (rates need two samples).
    first_true: int
    labels: Callable[[Spec, ThresholdAlert], dict[str, str]]
    series: Callable[[Spec, ThresholdAlert, Decimal, int], list[Series]]
    # PromQL appended after the comparison: when the crossing must not fire the alert.
    unless: Callable[[Spec, ThresholdAlert], str] = lambda s, a: ""


def _status(names: tuple[str, ...]) -> str:
    return "|".join(names)


def _const(metric: str, value: Decimal, samples: int) -> Series:
    return {"series": metric, "values": f"{decimal_text(value)}+0x{samples}"}


def _counter(metric: str, per_minute: Decimal, samples: int) -> Series:
    return {"series": metric, "values": f"0+{decimal_text(per_minute)}x{samples}"}


def _split(value: Decimal, minimum: int) -> tuple[int, int]:
    """Per-minute (part, whole) event counts whose ratio is exactly `value`."""
    whole = 100
    while (value * whole) != (value * whole).to_integral_value() or whole * 5 < minimum:
        whole *= 10
    return int(value * whole), whole


def failure_series(spec: Spec, value: Decimal, samples: int) -> list[Series]:
    """Counter samples whose failure ratio is exactly `value` (also used by the SLO tests)."""
    failed, whole = _split(value, spec.min_events)
    p = f'provider="{TEST_PROVIDER}"'
    return [
        _counter(f'nilecare_payments_completed_total{{{p}, status="failed"}}',
                 Decimal(failed), samples),
        _counter(f'nilecare_payments_completed_total{{{p}, status="confirmed"}}',
                 Decimal(whole - failed), samples),
    ]


def _processing_series(spec: Spec, _: ThresholdAlert, value: Decimal,
                       samples: int) -> list[Series]:
    count = Decimal(max(10, spec.min_events))
    p = f'provider="{TEST_PROVIDER}"'
    return [
        _counter(f"{PROCESSING}_sum{{{p}}}", value * count, samples),
        _counter(f"{PROCESSING}_count{{{p}}}", count, samples),
    ]


TEST_INSTANCE = "127.0.0.1:9999"


def _job(alert: ThresholdAlert) -> str:
    return f'job="{alert.job}", instance="{TEST_INSTANCE}"'


def _exporter(_: ThresholdAlert | None = None) -> str:
    return f'job="payment-metrics-exporter", instance="{TEST_INSTANCE}"'


def _scrape_timeout(spec: Spec, _: ThresholdAlert) -> int:
    return spec.prometheus.scrape_timeout.seconds


# Prometheus reads a changed file_sd file within 5 s (its discovery manager batches updates)
# and hands the new targets to the scrape manager at that manager's next 5 s reload tick.
DISCOVERY_DELAY = 10


def vanish(spec: Spec, discovery_delay: int = DISCOVERY_DELAY) -> int:
    """Seconds from a target leaving discovery until its series are stale, beyond the one
    scrape interval an alert's floor already counts. Prometheus writes a removed target's
    stale markers only after two more of its scrape intervals and 10% (the target may come
    back); until then the last sample answers, and `absent()` stays false. Discovery itself
    takes `discovery_delay` (file_sd's, by default)."""
    return discovery_delay + math.ceil(1.1 * spec.prometheus.scrape_interval.seconds)


def _target_turn(spec: Spec, alert: ThresholdAlert) -> int:
    """A hung target fails at its scrape timeout; a target that is not discovered at all
    (the rule's `missing` case) only once its series go stale."""
    hung = _scrape_timeout(spec, alert)
    return max(hung, vanish(spec)) if alert.missing is not None else hung


def _none_turn(_: Spec, __: ThresholdAlert) -> int:
    return 0


def _not_after_an_outage(spec: Spec, _: ThresholdAlert) -> str:
    """A provider that was down inside the window is not "degraded": the window still holds
    the outage, which its down alert paged for (and hid this one while it fired)."""
    down = [a for a in spec.alerts if a.signal == "provider_up"]
    if not down:
        return ""
    window = spec.rate_window
    return (f' unless on (provider) max_over_time(ALERTS{{alertname="{down[0].name}", '
            f'alertstate="firing"}}[{window}])')


def _provider(_: Spec, __: ThresholdAlert) -> dict[str, str]:
    return {"provider": TEST_PROVIDER}


def _none(_: Spec, __: ThresholdAlert) -> dict[str, str]:
    return {}


def _excluded(alert: ThresholdAlert) -> str:
    if not alert.exclude_providers:
        return ""
    return f'{{provider!~"{_status(alert.exclude_providers)}"}}'


SIGNALS: dict[str, Signal] = {
    "payment_failure_rate": Signal(
        query=lambda s, a: f"nilecare:payment_failure_rate:ratio_rate5m{_excluded(a)}",
        source="events", turn=lambda s, a: int(s.rate_window.seconds * a.threshold),
        fmt="percent", step=Decimal("0.01"), exact=False, first_true=60, labels=_provider,
        series=lambda s, a, v, n: failure_series(s, v, n),
    ),
    "target_up": Signal(
        query=lambda s, a: f'up{{job="{a.job}"}}',
        source="prometheus", turn=_target_turn,
        fmt="count", step=Decimal(1), exact=True, first_true=0,
        labels=lambda s, a: {"job": str(a.job), "instance": TEST_INSTANCE},
        series=lambda s, a, v, n: [_const(f"up{{{_job(a)}}}", v, n)],
    ),
    "database_up": Signal(
        query=lambda s, a: "min(nilecare_database_up)",
        # The exporter gives up on a hung database within its timeout, inside the scrape's.
        source="exporter", turn=_scrape_timeout,
        fmt="count", step=Decimal(1), exact=True, first_true=0, labels=_none,
        series=lambda s, a, v, n: [_const(f"nilecare_database_up{{{_exporter()}}}", v, n)],
    ),
    "provider_up": Signal(
        query=lambda s, a: f"min by (provider) (nilecare_provider_up{_excluded(a)})",
        # Calls are recorded when they end: a hung provider's after the timeout.
        source="exporter", turn=lambda s, a: s.provider_timeout.seconds,
        fmt="count", step=Decimal(1), exact=True, first_true=0, labels=_provider,
        series=lambda s, a, v, n: [_const(
            f'nilecare_provider_up{{{_exporter()}, provider="{TEST_PROVIDER}"}}', v, n)],
    ),
    "pending_verifications": Signal(
        query=lambda s, a: f"sum(nilecare:pending_verifications:total{_excluded(a)})",
        source="exporter", turn=_none_turn,
        fmt="count", step=Decimal(1), exact=True, first_true=0, labels=_none,
        series=lambda s, a, v, n: [_const(
            f'nilecare_pending_verifications{{provider="{TEST_PROVIDER}"}}', v, n)],
    ),
    "provider_success_rate": Signal(
        query=lambda s, a: "nilecare:provider_success_rate:ratio{"
        + ('window="5m"' + (f', provider!~"{_status(a.exclude_providers)}"'
                           if a.exclude_providers else "")) + "}",
        source="exporter", turn=lambda s, a: int(s.rate_window.seconds * (1 - a.threshold)),
        fmt="percent", step=Decimal("0.01"), exact=True, first_true=0,
        labels=lambda s, a: {"provider": TEST_PROVIDER, "window": "5m"},
        series=lambda s, a, v, n: [
            _const(f'nilecare_provider_success_ratio{{provider="{TEST_PROVIDER}", window="5m"}}',
                   v, n),
            _const(f'nilecare_provider_calls{{provider="{TEST_PROVIDER}", window="5m"}}',
                   Decimal(s.min_events), n),
        ],
        unless=_not_after_an_outage,
    ),
    "processing_time": Signal(
        query=lambda s, a: f"nilecare:payment_processing_seconds:avg5m{_excluded(a)}",
        source="events", turn=lambda s, a: int(a.threshold) + s.rate_window.seconds // 2,
        fmt="seconds", step=Decimal(1), exact=False, first_true=60, labels=_provider,
        series=_processing_series,
    ),
    "reconciliation_issues": Signal(
        query=lambda s, a: "sum(nilecare:reconciliation_issues:total)",
        source="exporter", turn=_none_turn,
        fmt="count", step=Decimal(1), exact=True, first_true=0, labels=_none,
        series=lambda s, a, v, n: [_const(
            'nilecare_reconciliation_unresolved_issues{type="amount_mismatch"}', v, n)],
    ),
}


def values(alert: ThresholdAlert) -> tuple[Decimal, Decimal]:
    """(silent, firing) test values: at or just inside the threshold, and just beyond it."""
    signal = SIGNALS[alert.signal]
    sign = 1 if alert.op == ">" else -1
    firing = alert.threshold + sign * signal.step
    silent = alert.threshold if signal.exact else alert.threshold - sign * signal.step
    if signal.fmt == "percent":
        for v in (silent, firing):
            if not 0 <= v <= 1:
                raise ValueError(
                    f"{alert.name}: threshold {alert.threshold} leaves no testable ratio "
                    f"{decimal_text(v)} on both sides; move it inside (0.01, 0.99)")
    if firing < 0 or silent < 0:
        raise ValueError(f"{alert.name}: threshold {alert.threshold} cannot be crossed")
    return silent, firing
