"""The whole spec, read with a named environment and overlay files merged over it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from infra.monitoring.duration import Duration
from infra.monitoring.node import Cursor, compose
from infra.monitoring.overlay import merge, without
from infra.monitoring.spec.alerts import (
    SIGNALS,
    BurnAlert,
    Slo,
    ThresholdAlert,
    parse_alert,
    parse_slo,
)
from infra.monitoring.spec.dashboards import Dashboard, parse_dashboard
from infra.monitoring.spec.routing import AlertmanagerSpec, parse_alertmanager

VERSION = "nilecare.monitoring/v2"


@dataclass(frozen=True)
class PrometheusSpec:
    scrape_interval: Duration
    scrape_timeout: Duration
    evaluation_interval: Duration
    targets_dir: str
    rules_dir: str
    secrets_dir: str  # where Prometheus reads the CA an https target is checked against


@dataclass(frozen=True)
class DailySummary:
    name: str
    location: str
    start: str
    end: str
    runbook: str


@dataclass(frozen=True)
class Spec:
    service: str
    runbook_base: str
    prometheus: PrometheusSpec
    min_events: int
    rate_window: Duration
    provider_timeout: Duration
    signals: dict[str, str]
    slo: Slo
    alerts: tuple[ThresholdAlert, ...]
    daily_summary: DailySummary
    alertmanager: AlertmanagerSpec
    dashboards: tuple[Dashboard, ...] = field(default=())
    environments: tuple[str, ...] = ()

    def runbook_url(self, anchor: str) -> str:
        return f"{self.runbook_base}#{anchor}"

    def alert_names(self) -> tuple[str, ...]:
        return (*(a.name for a in self.alerts), *(a.name for a in self.slo.burn_alerts),
                self.daily_summary.name, "Watchdog")

    def every_alert(self) -> tuple[ThresholdAlert | BurnAlert, ...]:
        """Threshold and burn alerts: the ones with a drill and a response target."""
        return (*self.alerts, *self.slo.burn_alerts)

    def alert(self, name: str) -> ThresholdAlert | BurnAlert:
        for found in self.every_alert():
            if found.name == name:
                return found
        raise KeyError(f"no alert named {name!r} in the spec")


def load(path: Path, environment: str | None = None, overlays: Sequence[Path] = ()) -> Spec:
    """Read and validate the spec file at `path`, with a named environment and overlay files
    merged over it in that order."""
    return parse(path.read_text(encoding="utf-8"), str(path), environment,
                 [(p.read_text(encoding="utf-8"), str(p)) for p in overlays])


def parse(text: str, source: str = "thresholds.yaml", environment: str | None = None,
          overlays: Sequence[tuple[str, str]] = ()) -> Spec:
    root = Cursor.parse(text, source)
    names: tuple[str, ...] = ()
    if root.has("environments"):
        envs = root.get("environments")
        names = tuple(name for name, _ in envs.mapping())
        for _, overlay in envs.mapping():
            # Every overlay must yield a valid spec, whether or not this render uses it.
            _read(Cursor(merge(without(root.node, "environments"), overlay.node), "", source),
                  names)
    node = without(root.node, "environments")
    if environment is not None:
        if environment not in names:
            root.fail(f"no environment '{environment}' (known: {', '.join(names) or 'none'})")
        node = merge(node, root.get("environments").get(environment).node)
    for overlay_text, overlay_source in overlays:
        node = merge(node, without(compose(overlay_text, overlay_source), "environments"))
    return _read(Cursor(node, "", source), names)


def _read(root: Cursor, environments: tuple[str, ...]) -> Spec:
    root.only("version", "service", "runbook_base", "prometheus", "min_events", "rate_window",
              "provider_timeout", "signals", "slo", "alerts", "daily_summary", "alertmanager",
              "dashboards")
    version = root.get("version")
    if version.scalar() != VERSION:
        version.fail(f"'{version.scalar()}' is not a supported version (expected {VERSION})")
    spec = Spec(
        service=root.get("service").name(),
        runbook_base=root.get("runbook_base").text(),
        prometheus=_prometheus(root.get("prometheus")),
        min_events=root.get("min_events").integer(),
        rate_window=root.get("rate_window").duration(),
        provider_timeout=root.get("provider_timeout").duration(),
        signals=_signals(root.get("signals")),
        slo=parse_slo(root.get("slo")),
        alerts=tuple(parse_alert(c) for c in root.get("alerts").items()),
        daily_summary=_summary(root.get("daily_summary")),
        alertmanager=parse_alertmanager(root.get("alertmanager")),
        dashboards=tuple(parse_dashboard(c) for c in root.get("dashboards").items()),
        environments=environments,
    )
    _check_unique(root, spec)
    return spec


def _check_unique(root: Cursor, spec: Spec) -> None:
    names = spec.alert_names()
    for name in names:
        if names.count(name) > 1:
            root.fail(f"alert name '{name}' is used more than once")
    if spec.alertmanager.fast_alert not in names:
        root.get("alertmanager").get("fast_route").get("alert").fail(
            f"'{spec.alertmanager.fast_alert}' is not an alert in this spec")
    uids = [d.uid for d in spec.dashboards]
    if len(set(uids)) != len(uids):
        root.get("dashboards").fail("dashboard uids must be unique")


def _prometheus(c: Cursor) -> PrometheusSpec:
    c.only("scrape_interval", "scrape_timeout", "evaluation_interval", "targets_dir",
           "rules_dir", "secrets_dir")
    spec = PrometheusSpec(
        c.get("scrape_interval").duration(), c.get("scrape_timeout").duration(),
        c.get("evaluation_interval").duration(), c.get("targets_dir").text(),
        c.get("rules_dir").text(), c.get("secrets_dir").text(),
    )
    if spec.scrape_timeout > spec.scrape_interval:
        c.get("scrape_timeout").fail("must not be longer than scrape_interval")
    return spec


def _signals(c: Cursor) -> dict[str, str]:
    found = {name: text.text() for name, text in c.mapping()}
    missing = [s for s in SIGNALS if s not in found]
    if missing:
        c.fail(f"say what each signal measures; missing: {', '.join(missing)}")
    unknown = [s for s in found if s not in SIGNALS]
    if unknown:
        c.fail(f"unknown signal(s) {', '.join(unknown)} (known: {', '.join(SIGNALS)})")
    return {s: " ".join(found[s].split()) for s in SIGNALS}


def _summary(c: Cursor) -> DailySummary:
    c.only("name", "location", "start", "end", "runbook")
    return DailySummary(c.get("name").name(), c.get("location").text(), c.get("start").text(),
                        c.get("end").text(), c.get("runbook").name())

