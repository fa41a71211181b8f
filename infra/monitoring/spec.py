"""The typed monitoring spec, read and validated from monitoring/thresholds.yaml."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from infra.monitoring.drills import Drill, parse_drills
from infra.monitoring.duration import Duration
from infra.monitoring.node import Cursor, SpecError, compose
from infra.monitoring.overlay import merge, without

VERSION = "nilecare.monitoring/v2"
SEVERITIES = ("critical", "high", "medium")
SIGNALS = (
    "payment_failure_rate", "target_up", "database_up", "provider_up",
    "pending_verifications", "provider_success_rate", "processing_time", "reconciliation_issues",
)
PANEL_TYPES = ("timeseries", "stat", "bargauge", "table")
# Only an alert this slow to fire or to clear (its `for`, or the longest window it reads) may
# be drilled on a time-scaled render.
SCALE_FROM = Duration.parse("10m")


@dataclass(frozen=True)
class PrometheusSpec:
    scrape_interval: Duration
    scrape_timeout: Duration
    evaluation_interval: Duration
    targets_dir: str
    rules_dir: str


@dataclass(frozen=True)
class ThresholdAlert:
    """One row of the DESIGN.md thresholds table."""

    name: str
    signal: str
    op: str
    threshold: Decimal
    for_: Duration
    severity: str
    service: str
    summary: str
    description: str
    runbook: str
    drills: tuple[Drill, ...]
    exclude_providers: tuple[str, ...] = ()
    response_target: Duration | None = None
    job: str | None = None  # target_up: the scrape job it watches
    missing: str | None = None  # target_up: the description when no target is discovered


@dataclass(frozen=True)
class BurnWindow:
    long: Duration
    short: Duration
    factor: Decimal


@dataclass(frozen=True)
class BurnAlert:
    name: str
    severity: str
    service: str
    for_: Duration
    windows: tuple[BurnWindow, ...]
    summary: str
    description: str
    runbook: str
    drills: tuple[Drill, ...]


@dataclass(frozen=True)
class Slo:
    name: str
    objective: Decimal
    period: Duration
    burn_alerts: tuple[BurnAlert, ...]

    @property
    def budget(self) -> Decimal:
        return 1 - self.objective

    def windows(self) -> tuple[Duration, ...]:
        found = {w for a in self.burn_alerts for b in a.windows for w in (b.long, b.short)}
        return tuple(sorted(found | {self.period}))


@dataclass(frozen=True)
class DailySummary:
    name: str
    location: str
    start: str
    end: str
    runbook: str


@dataclass(frozen=True)
class Route:
    receiver: str
    group_wait: Duration
    group_interval: Duration
    repeat_interval: Duration
    send_resolved: bool
    response_target: Duration
    digest: bool = False


@dataclass(frozen=True)
class Tls:
    ca_file: str | None = None
    server_name: str | None = None
    insecure_skip_verify: bool = False


@dataclass(frozen=True)
class Smtp:
    smarthost: str
    from_: str
    to: str
    username: str
    require_tls: bool
    tls: Tls | None = None


@dataclass(frozen=True)
class AlertmanagerSpec:
    templates_dir: str
    secrets_dir: str
    pagerduty_url: str
    slack_channel: str
    smtp: Smtp
    heartbeat_url: str
    routes: dict[str, Route]
    fast_alert: str
    fast_group_wait: Duration


@dataclass(frozen=True)
class Target:
    expr: str
    legend: str = ""
    instant: bool = False


@dataclass(frozen=True)
class Panel:
    title: str
    type: str
    unit: str
    w: int
    h: int
    targets: tuple[Target, ...]


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    tags: tuple[str, ...]
    rows: tuple[Row, ...]


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
        slo=_slo(root.get("slo")),
        alerts=tuple(_alert(c) for c in root.get("alerts").items()),
        daily_summary=_summary(root.get("daily_summary")),
        alertmanager=_alertmanager(root.get("alertmanager")),
        dashboards=tuple(_dashboard(c) for c in root.get("dashboards").items()),
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
           "rules_dir")
    spec = PrometheusSpec(
        c.get("scrape_interval").duration(), c.get("scrape_timeout").duration(),
        c.get("evaluation_interval").duration(), c.get("targets_dir").text(),
        c.get("rules_dir").text(),
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


def _severity(c: Cursor) -> str:
    return c.choice(*SEVERITIES)


def _alert(c: Cursor) -> ThresholdAlert:
    c.only("name", "signal", "op", "threshold", "for", "severity", "service", "summary",
           "description", "runbook", "exclude_providers", "response_target", "job", "missing",
           "drill")
    threshold = c.get("threshold")
    value = threshold.decimal()
    signal = c.get("signal").choice(*SIGNALS)
    if signal.endswith(("_rate", "_up")) and not 0 <= value <= 1:
        threshold.fail(f"{value} is a ratio threshold and must be between 0 and 1")
    for_ = c.get("for").duration()
    targeted = signal == "target_up"
    for key in ("job", "missing"):
        if targeted and not c.has(key):
            c.fail(f"a target_up alert needs '{key}'")
        if not targeted and c.has(key):
            c.get(key).fail(f"only target_up alerts take '{key}'")
    return ThresholdAlert(
        name=c.get("name").name(),
        signal=signal,
        op=c.get("op").choice(">", "<"),
        threshold=value,
        for_=for_,
        severity=_severity(c.get("severity")),
        service=c.get("service").name(),
        summary=c.get("summary").text(),
        description=c.get("description").text(),
        runbook=c.get("runbook").name(),
        drills=parse_drills(c.get("drill"), for_ >= SCALE_FROM),
        exclude_providers=(c.get("exclude_providers").strings()
                           if c.has("exclude_providers") else ()),
        response_target=c.get("response_target").duration() if c.has("response_target") else None,
        job=c.get("job").name() if targeted else None,
        missing=c.get("missing").text() if targeted else None,
    )


def _slo(c: Cursor) -> Slo:
    c.only("name", "objective", "period", "burn_alerts")
    objective = c.get("objective")
    value = objective.decimal()
    if not 0 < value < 1:
        objective.fail(f"{value} must be between 0 and 1 (for example 0.995)")
    alerts = []
    for a in c.get("burn_alerts").items():
        a.only("name", "severity", "service", "for", "windows", "summary", "description",
               "runbook", "drill")
        windows = []
        for w in a.get("windows").items():
            w.only("long", "short", "factor")
            win = BurnWindow(w.get("long").duration(), w.get("short").duration(),
                             w.get("factor").decimal())
            if win.short >= win.long:
                w.fail("the short window must be shorter than the long one")
            windows.append(win)
        for_ = a.get("for").duration()
        slow = for_ >= SCALE_FROM or max(w.long for w in windows) >= SCALE_FROM
        alerts.append(BurnAlert(
            a.get("name").name(), _severity(a.get("severity")), a.get("service").name(), for_,
            tuple(windows), a.get("summary").text(), a.get("description").text(),
            a.get("runbook").name(), parse_drills(a.get("drill"), slow),
        ))
    return Slo(c.get("name").name(), value, c.get("period").duration(), tuple(alerts))


def _summary(c: Cursor) -> DailySummary:
    c.only("name", "location", "start", "end", "runbook")
    return DailySummary(c.get("name").name(), c.get("location").text(), c.get("start").text(),
                        c.get("end").text(), c.get("runbook").name())


def _bool(c: Cursor) -> bool:
    return c.choice("true", "false") == "true"


def _route(c: Cursor) -> Route:
    c.only("receiver", "group_wait", "group_interval", "repeat_interval", "send_resolved",
           "response_target", "digest")
    return Route(
        c.get("receiver").name(), c.get("group_wait").duration(),
        c.get("group_interval").duration(), c.get("repeat_interval").duration(),
        _bool(c.get("send_resolved")), c.get("response_target").duration(),
        _bool(c.get("digest")) if c.has("digest") else False,
    )


def _tls(c: Cursor) -> Tls:
    c.only("ca_file", "server_name", "insecure_skip_verify")
    return Tls(c.get("ca_file").text() if c.has("ca_file") else None,
               c.get("server_name").text() if c.has("server_name") else None,
               _bool(c.get("insecure_skip_verify")) if c.has("insecure_skip_verify") else False)


def _alertmanager(c: Cursor) -> AlertmanagerSpec:
    c.only("templates_dir", "secrets_dir", "pagerduty_url", "slack_channel", "smtp",
           "heartbeat_url", "routes", "fast_route")
    s = c.get("smtp")
    s.only("smarthost", "from", "to", "username", "require_tls", "tls")
    routes = {key: _route(r) for key, r in c.get("routes").mapping()}
    for key in (*SEVERITIES, "summary", "heartbeat"):
        if key not in routes:
            c.get("routes").fail(f"missing route '{key}'")
    beat = routes["heartbeat"]
    if beat.repeat_interval >= beat.group_interval:
        c.get("routes").get("heartbeat").get("repeat_interval").fail(
            "must be shorter than group_interval, so that every flush sends a beat (with equal "
            "intervals a flush that comes a moment early skips it: a beat every 2 intervals)")
    fast = c.get("fast_route")
    fast.only("alert", "group_wait")
    return AlertmanagerSpec(
        templates_dir=c.get("templates_dir").text(),
        secrets_dir=c.get("secrets_dir").text(),
        pagerduty_url=c.get("pagerduty_url").text(),
        slack_channel=c.get("slack_channel").text(),
        smtp=Smtp(s.get("smarthost").text(), s.get("from").text(), s.get("to").text(),
                  s.get("username").text(), _bool(s.get("require_tls")),
                  _tls(s.get("tls")) if s.has("tls") else None),
        heartbeat_url=c.get("heartbeat_url").text(),
        routes=routes,
        fast_alert=fast.get("alert").name(),
        fast_group_wait=fast.get("group_wait").duration(),
    )


def _dashboard(c: Cursor) -> Dashboard:
    c.only("uid", "title", "tags", "rows")
    rows = []
    for r in c.get("rows").items():
        r.only("title", "panels")
        panels = []
        for p in r.get("panels").items():
            p.only("title", "type", "unit", "w", "h", "targets")
            w = p.get("w")
            if not 1 <= w.integer() <= 24:
                w.fail("panel width must be between 1 and 24 grid columns")
            targets = []
            for t in p.get("targets").items():
                t.only("expr", "legend", "instant")
                targets.append(Target(
                    t.get("expr").text(), t.get("legend").text() if t.has("legend") else "",
                    _bool(t.get("instant")) if t.has("instant") else False,
                ))
            if not targets:
                p.get("targets").fail("a panel needs at least one query")
            panels.append(Panel(p.get("title").text(), p.get("type").choice(*PANEL_TYPES),
                                p.get("unit").text(), w.integer(), p.get("h").integer(),
                                tuple(targets)))
        rows.append(Row(r.get("title").text(), tuple(panels)))
    return Dashboard(c.get("uid").name(), c.get("title").text(), c.get("tags").strings(),
                     tuple(rows))


__all__ = ["Spec", "SpecError", "load", "parse"]
