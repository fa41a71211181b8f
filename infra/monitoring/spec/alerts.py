"""The spec's alerts: thresholds on a signal, and the SLO with its burn-rate alerts."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from infra.monitoring.drills import Drill, parse_drills
from infra.monitoring.duration import Duration
from infra.monitoring.node import Cursor

SEVERITIES = ("critical", "high", "medium")
SIGNALS = (
    "payment_failure_rate", "target_up", "database_up", "provider_up",
    "pending_verifications", "provider_success_rate", "processing_time", "reconciliation_issues",
)
# Only an alert this slow to fire or to clear (its `for`, or the longest window it reads) may
# be drilled on a time-scaled render.
SCALE_FROM = Duration.parse("10m")


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


def _severity(c: Cursor) -> str:
    return c.choice(*SEVERITIES)


def parse_alert(c: Cursor) -> ThresholdAlert:
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


def parse_slo(c: Cursor) -> Slo:
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

