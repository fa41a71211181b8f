"""The typed monitoring spec, read and validated from monitoring/thresholds.yaml."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from infra.monitoring.duration import Duration
from infra.monitoring.node import Cursor, SpecError

VERSION = "nilecare.monitoring/v1"
SEVERITIES = ("critical", "high", "medium")
SIGNALS = (
    "payment_failure_rate", "gateway_up", "database_up", "provider_up",
    "pending_verifications", "provider_success_rate", "processing_time", "reconciliation_issues",
)
PANEL_TYPES = ("timeseries", "stat", "bargauge", "table")


@dataclass(frozen=True)
class Job:
    job: str
    target: str
    path: str


@dataclass(frozen=True)
class PrometheusSpec:
    scrape_interval: Duration
    evaluation_interval: Duration
    alertmanager: str
    jobs: dict[str, Job]


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
    exclude_providers: tuple[str, ...] = ()
    response_target: Duration | None = None


@dataclass(frozen=True)
class BurnWindow:
    long: Duration
    short: Duration
    factor: Decimal


@dataclass(frozen=True)
class BurnAlert:
    name: str
    severity: str
    for_: Duration
    windows: tuple[BurnWindow, ...]
    summary: str
    description: str
    runbook: str


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
class AbsentAlert:
    name: str
    metric: str
    selector: dict[str, str]
    for_: Duration
    severity: str
    service: str
    runbook: str


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
class Smtp:
    smarthost: str
    from_: str
    to: str
    username: str
    require_tls: bool


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
    slack_api_url: str | None = None  # test variants only; production reads api_url_file


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
    slo: Slo
    alerts: tuple[ThresholdAlert, ...]
    absent: tuple[AbsentAlert, ...]
    daily_summary: DailySummary
    alertmanager: AlertmanagerSpec
    dashboards: tuple[Dashboard, ...] = field(default=())

    def runbook_url(self, anchor: str) -> str:
        return f"{self.runbook_base}#{anchor}"

    def alert_names(self) -> tuple[str, ...]:
        return (
            *(a.name for a in self.alerts), *(a.name for a in self.slo.burn_alerts),
            *(a.name for a in self.absent), self.daily_summary.name, "Watchdog",
        )


def load(path: Path) -> Spec:
    """Read and validate the spec file at `path`."""
    return parse(path.read_text(encoding="utf-8"), str(path))


def parse(text: str, source: str = "thresholds.yaml") -> Spec:
    root = Cursor.parse(text, source)
    root.only("version", "service", "runbook_base", "prometheus", "min_events", "slo", "alerts",
              "absent", "daily_summary", "alertmanager", "dashboards")
    version = root.get("version")
    if version.scalar() != VERSION:
        version.fail(f"'{version.scalar()}' is not a supported version (expected {VERSION})")
    spec = Spec(
        service=root.get("service").name(),
        runbook_base=root.get("runbook_base").text(),
        prometheus=_prometheus(root.get("prometheus")),
        min_events=root.get("min_events").integer(),
        slo=_slo(root.get("slo")),
        alerts=tuple(_alert(c) for c in root.get("alerts").items()),
        absent=tuple(_absent(c) for c in root.get("absent").items()),
        daily_summary=_summary(root.get("daily_summary")),
        alertmanager=_alertmanager(root.get("alertmanager")),
        dashboards=tuple(_dashboard(c) for c in root.get("dashboards").items()),
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
    c.only("scrape_interval", "evaluation_interval", "alertmanager", "jobs")
    jobs: dict[str, Job] = {}
    for key, j in c.get("jobs").mapping():
        j.only("job", "target", "path")
        jobs[key] = Job(j.get("job").text(), j.get("target").text(), j.get("path").text())
    for required in ("gateway", "exporter", "alertmanager"):
        if required not in jobs:
            c.get("jobs").fail(f"missing required job '{required}'")
    return PrometheusSpec(
        c.get("scrape_interval").duration(), c.get("evaluation_interval").duration(),
        c.get("alertmanager").text(), jobs,
    )


def _severity(c: Cursor) -> str:
    return c.choice(*SEVERITIES)


def _alert(c: Cursor) -> ThresholdAlert:
    c.only("name", "signal", "op", "threshold", "for", "severity", "service", "summary",
           "description", "runbook", "exclude_providers", "response_target")
    threshold = c.get("threshold")
    value = threshold.decimal()
    if c.get("signal").scalar().endswith(("_rate", "_up")) and not 0 <= value <= 1:
        threshold.fail(f"{value} is a ratio threshold and must be between 0 and 1")
    return ThresholdAlert(
        name=c.get("name").name(),
        signal=c.get("signal").choice(*SIGNALS),
        op=c.get("op").choice(">", "<"),
        threshold=value,
        for_=c.get("for").duration(),
        severity=_severity(c.get("severity")),
        service=c.get("service").name(),
        summary=c.get("summary").text(),
        description=c.get("description").text(),
        runbook=c.get("runbook").name(),
        exclude_providers=(c.get("exclude_providers").strings()
                           if c.has("exclude_providers") else ()),
        response_target=c.get("response_target").duration() if c.has("response_target") else None,
    )


def _slo(c: Cursor) -> Slo:
    c.only("name", "objective", "period", "burn_alerts")
    objective = c.get("objective")
    value = objective.decimal()
    if not 0 < value < 1:
        objective.fail(f"{value} must be between 0 and 1 (for example 0.995)")
    alerts = []
    for a in c.get("burn_alerts").items():
        a.only("name", "severity", "for", "windows", "summary", "description", "runbook")
        windows = []
        for w in a.get("windows").items():
            w.only("long", "short", "factor")
            win = BurnWindow(w.get("long").duration(), w.get("short").duration(),
                             w.get("factor").decimal())
            if win.short >= win.long:
                w.fail("the short window must be shorter than the long one")
            windows.append(win)
        alerts.append(BurnAlert(
            a.get("name").name(), _severity(a.get("severity")), a.get("for").duration(),
            tuple(windows), a.get("summary").text(), a.get("description").text(),
            a.get("runbook").name(),
        ))
    return Slo(c.get("name").name(), value, c.get("period").duration(), tuple(alerts))


def _absent(c: Cursor) -> AbsentAlert:
    c.only("name", "metric", "selector", "for", "severity", "service", "runbook")
    selector = ({k: v.text() for k, v in c.get("selector").mapping()}
                if c.has("selector") else {})
    return AbsentAlert(
        c.get("name").name(), c.get("metric").name(), selector, c.get("for").duration(),
        _severity(c.get("severity")), c.get("service").name(), c.get("runbook").name(),
    )


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


def _alertmanager(c: Cursor) -> AlertmanagerSpec:
    c.only("templates_dir", "secrets_dir", "pagerduty_url", "slack_channel", "smtp",
           "heartbeat_url", "routes", "fast_route")
    s = c.get("smtp")
    s.only("smarthost", "from", "to", "username", "require_tls")
    routes = {key: _route(r) for key, r in c.get("routes").mapping()}
    for key in (*SEVERITIES, "summary", "heartbeat"):
        if key not in routes:
            c.get("routes").fail(f"missing route '{key}'")
    fast = c.get("fast_route")
    fast.only("alert", "group_wait")
    return AlertmanagerSpec(
        templates_dir=c.get("templates_dir").text(),
        secrets_dir=c.get("secrets_dir").text(),
        pagerduty_url=c.get("pagerduty_url").text(),
        slack_channel=c.get("slack_channel").text(),
        smtp=Smtp(s.get("smarthost").text(), s.get("from").text(), s.get("to").text(),
                  s.get("username").text(), _bool(s.get("require_tls"))),
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
