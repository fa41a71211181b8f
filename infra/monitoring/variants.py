"""Variants of a spec for fire drills: a subset of its alerts, and a time-scaled render.

A time-scaled spec divides every duration the pipeline waits on (scrape and evaluation
intervals, `for`, the rate and SLO windows, the routes' waits) by the same factor, so an
alert whose `for` is half an hour can be provoked and resolved in a minute, exactly as
written otherwise. Values (thresholds, seconds of processing time) are not scaled.
"""

from __future__ import annotations

import dataclasses

from infra.monitoring.duration import Duration
from infra.monitoring.spec import BurnAlert, BurnWindow, Route, Spec, ThresholdAlert

MIN_SCRAPE = 2  # seconds: the shortest scrape interval a scaled render uses


def only(spec: Spec, names: set[str]) -> Spec:
    """`spec` with only the threshold and burn alerts named (SLO windows follow)."""
    unknown = names - {a.name for a in spec.every_alert()}
    if unknown:
        raise KeyError(f"no alert(s) {sorted(unknown)} in the spec")
    return dataclasses.replace(
        spec, alerts=tuple(a for a in spec.alerts if a.name in names),
        slo=dataclasses.replace(spec.slo, burn_alerts=tuple(
            b for b in spec.slo.burn_alerts if b.name in names)))


def _div(duration: Duration, factor: int, minimum: int = 1) -> Duration:
    if duration.seconds == 0:
        return duration
    return Duration.of(max(minimum, round(duration.seconds / factor)))


def scaled(spec: Spec, factor: int) -> Spec:
    """`spec` with its waits and windows divided by `factor` (1 returns it unchanged)."""
    if factor == 1:
        return spec
    p = spec.prometheus
    scrape = _div(p.scrape_interval, factor, MIN_SCRAPE)
    prometheus = dataclasses.replace(
        p, scrape_interval=scrape, evaluation_interval=_div(p.evaluation_interval, factor),
        scrape_timeout=min(scrape, _div(p.scrape_timeout, factor, MIN_SCRAPE)))

    def alert(a: ThresholdAlert) -> ThresholdAlert:
        return dataclasses.replace(
            a, for_=_div(a.for_, factor),
            response_target=_div(a.response_target, factor) if a.response_target else None)

    def burn(b: BurnAlert) -> BurnAlert:
        return dataclasses.replace(b, for_=_div(b.for_, factor), windows=tuple(
            BurnWindow(_div(w.long, factor), _div(w.short, factor), w.factor)
            for w in b.windows))

    def route(r: Route) -> Route:
        return dataclasses.replace(
            r, group_wait=_div(r.group_wait, factor), group_interval=_div(r.group_interval, factor),
            repeat_interval=_div(r.repeat_interval, factor),
            response_target=_div(r.response_target, factor))

    am = spec.alertmanager
    return dataclasses.replace(
        spec, prometheus=prometheus, rate_window=_div(spec.rate_window, factor),
        alerts=tuple(alert(a) for a in spec.alerts),
        slo=dataclasses.replace(spec.slo, period=_div(spec.slo.period, factor),
                                burn_alerts=tuple(burn(b) for b in spec.slo.burn_alerts)),
        alertmanager=dataclasses.replace(
            am, routes={k: route(r) for k, r in am.routes.items()},
            fast_group_wait=_div(am.fast_group_wait, factor)))
