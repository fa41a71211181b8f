"""Runs the drills: injects each fault, waits for the page at the sink its severity routes
to, clears the fault, waits for the resolved notice (or, for a digest, the alert to clear),
and keeps the numbers for the report."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from infra.monitoring.signals import vanish
from infra.monitoring.spec import ThresholdAlert
from infra.monitoring.timing import group_wait, timing
from tests.drill.plan import Alert, Group, conflict, provider_of
from tests.drill.stacks import Stack
from tests.drill.system import JOBS as SCRAPED
from tests.drill.system import Product
from tests.drill.traffic import (
    DRILLED_RATE,
    Traffic,
    seed_awaiting,
    seed_statement,
    unseed_awaiting,
    unseed_statement,
)
from tests.sinks import HttpSink, MailSink, Notice

MARGIN = 180  # seconds past the expected time before a page or a resolution counts as lost
CRITICAL_SLACK = 10  # seconds a critical's time-to-page may exceed its floor
QUIET_SLACK = 10  # seconds past a group flush before an alert counts as quiet again
# Prometheus keeps sending a resolved alert to Alertmanager for this long after it resolved
# (its resolvedRetention), so Alertmanager keeps the alert's group: a new firing joins it
# and goes out at the group's next group_interval tick, not after group_wait.
RESOLVED_RETENTION = 15 * 60


@dataclass
class Watch:
    """One alert watched during one injection, on the render of its scale."""

    alert: Alert
    stack: Stack
    provider: str | None
    receiver: str
    send_resolved: bool
    floor: int
    target: int
    page_timeout: float
    resolve_timeout: float
    settle: int  # seconds an earlier firing of this alert needs to reach its receiver
    regroup: int  # what a live Alertmanager group adds at worst: group_interval - group_wait
    paged: Notice | None = None
    elsewhere: list[str] = field(default_factory=list)
    resolved_after: float | None = None
    cleared_without_notice: bool = False

    def matches(self, notice: Notice) -> bool:
        return (notice.alertname == self.alert.name and notice.provider == self.provider
                and notice.channel.split("@")[0] == self.stack.channel)


@dataclass
class Run:
    group: Group
    watches: list[Watch]
    started: float = 0.0
    cleared: float | None = None
    finished: float | None = None
    undo: list[Callable[[], None]] = field(default_factory=list)
    failed: str | None = None
    waiting_since: float | None = None  # first time it could run but an alert was not quiet


class Runner:
    def __init__(self, system: Product, stacks: dict[int, Stack], sink: HttpSink, mail: MailSink,
                 traffic: Traffic, say: Callable[[str], None]) -> None:
        self.system = system
        self.stacks = stacks
        self.sink = sink
        self.mail = mail
        self.traffic = traffic
        self.say = say
        self.defaults = system.controls()

    # --- planning -----------------------------------------------------------------------
    def watches(self, group: Group) -> list[Watch]:
        found = []
        for alert, scale in group.alerts:
            stack = self.stacks[scale]
            variant = stack.spec.alert(alert.name)
            t = timing(stack.spec, variant)
            route = stack.spec.alertmanager.routes[alert.severity]
            p = stack.spec.prometheus
            # How long the signal remembers the fault: a burn pair clears with its short window.
            window = (stack.spec.rate_window.seconds if isinstance(variant, ThresholdAlert)
                      else max(w.short.seconds for w in variant.windows))
            floor = t.floor + _known_wait(group, stack, self.system)
            found.append(Watch(
                alert=variant, stack=stack, provider=provider_of(alert, group.drill),
                receiver=_kind(route.receiver), send_resolved=route.send_resolved,
                floor=floor, target=t.target.seconds,
                page_timeout=t.worst_case + MARGIN,
                resolve_timeout=(window + route.group_interval.seconds
                                 + p.scrape_interval.seconds + p.evaluation_interval.seconds
                                 + MARGIN),
                settle=(route.group_interval.seconds + p.evaluation_interval.seconds
                        + QUIET_SLACK),
                regroup=max(0, route.group_interval.seconds
                            - group_wait(stack.spec, variant).seconds)))
        return found

    def _loud(self, run: Run) -> list[str]:
        """The watched alerts that were pending or firing within their settle time.

        An alert that fired as a side effect of an earlier drill (the exporter stopped under
        another alert's drill pages PaymentExporterDown) is still in Alertmanager's
        notification log until the group's next flush reports it resolved. Fired again
        before that flush, it is the same alert to Alertmanager, which stays silent until
        repeat_interval: the drill would wait for a page that never comes."""
        loud = []
        for watch in run.watches:
            matcher = f'alertname="{watch.alert.name}"'
            if watch.provider is not None:
                matcher += f',provider="{watch.provider}"'
            try:
                found = watch.stack.query(
                    f"count_over_time(ALERTS{{{matcher}}}[{watch.settle}s])")
            except httpx.HTTPError:
                found = [{}]  # Prometheus did not say: ask again at the next pass
            if found:
                loud.append(f"{watch.alert.name} ({watch.stack.name})")
        return loud

    def _fired_lately(self, watch: Watch) -> bool:
        """Whether the alert fired within Prometheus's resolved retention (an earlier drill,
        or a side effect of one), so Alertmanager still holds its group."""
        matcher = f'alertname="{watch.alert.name}",alertstate="firing"'
        if watch.provider is not None:
            matcher += f',provider="{watch.provider}"'
        try:
            return bool(watch.stack.query(
                f"count_over_time(ALERTS{{{matcher}}}[{RESOLVED_RETENTION}s])"))
        except httpx.HTTPError:
            return True  # unknown: allow for it

    def _quiet(self, run: Run) -> bool:
        loud = self._loud(run)
        if not loud:
            return True
        now = time.monotonic()
        if run.waiting_since is None:
            run.waiting_since = now
            self.say(f"wait    {run.group.title}: {', '.join(loud)} fired lately; "
                     f"waiting for its resolution to go out first")
        if now - run.waiting_since > max(w.resolve_timeout for w in run.watches):
            run.failed = f"{', '.join(loud)} never went quiet before the drill"
            return True
        return False

    def run(self, groups: list[Group]) -> list[Run]:
        pending = [Run(g, self.watches(g)) for g in groups]
        done: list[Run] = []
        active: list[Run] = []
        while pending or active:
            for run in list(pending):
                # Never ahead of an earlier drill it conflicts with: spec order is kept.
                earlier = pending[:pending.index(run)]
                if any(conflict(run.group, r.group) for r in (*active, *earlier)):
                    continue
                if not self._quiet(run):
                    continue
                pending.remove(run)
                if run.failed:  # it never went quiet: reported, not injected
                    run.finished = time.monotonic()
                    done.append(run)
                    continue
                self._inject(run)
                active.append(run)
            for run in list(active):
                self._advance(run)
                if run.finished is not None:
                    active.remove(run)
                    done.append(run)
            time.sleep(1)
        return done

    # --- one injection ------------------------------------------------------------------
    def _inject(self, run: Run) -> None:
        drill = run.group.drill
        names = ", ".join(f"{a.name}" + (f" (x{s})" if s > 1 else "") for a, s in run.group.alerts)
        self.say(f"inject  {run.group.title}  → {names}")
        for watch in run.watches:
            if self._fired_lately(watch):
                # Known before the fault: the page waits for the live group's next tick.
                watch.floor += watch.regroup
        run.started = time.monotonic()
        try:
            for name in drill.while_down:
                self._hold(name, run)
            if drill.fault == "provider" and drill.provider is not None:
                provider = drill.provider
                self._control(provider, dict(drill.controls))
                self.traffic.set(provider, DRILLED_RATE)
                run.undo.append(lambda: self._control(provider, self.defaults[provider]))
            elif drill.fault == "stop" and drill.process is not None:
                self._hold(drill.process, run)
            elif drill.fault == "freeze" and drill.process is not None:
                process = drill.process
                self.system.freeze(process)
                run.undo.append(lambda: self.system.thaw(process))
            elif drill.fault == "undiscover" and drill.job is not None:
                job = drill.job
                self.system.undiscover(job)
                run.undo.append(lambda: self.system.rediscover(job))
            elif drill.rows == "awaiting_verification":
                ids = seed_awaiting(self.system, drill.count)
                run.undo.append(lambda: unseed_awaiting(self.system, ids))
            elif drill.rows == "unmatched_statement_lines":
                seed_statement(self.system, drill.count)
                run.undo.append(lambda: unseed_statement(self.system))
        except Exception as exc:  # the drill's boundary: report it, let the others run
            run.failed = f"injection failed: {exc}"
            self._clear(run)
            run.finished = time.monotonic()

    def _control(self, provider: str, values: dict[str, Any]) -> None:
        self.system.control(provider, values)

    def _hold(self, name: str, run: Run) -> None:
        """Stop `name` until the fault is cleared (no two running drills break one process)."""
        self.system.stop(name)
        run.undo.append(lambda: self.system.start(name))

    def _clear(self, run: Run) -> None:
        run.cleared = time.monotonic()
        for undo in reversed(run.undo):
            try:
                undo()
            except Exception as exc:
                run.failed = run.failed or f"clearing failed: {exc}"
        self.say(f"clear   {run.group.title}")

    def _advance(self, run: Run) -> None:
        if run.finished is not None:
            return
        now = time.monotonic()
        notices = [*self.sink.notices, *self.mail.notices]
        for watch in run.watches:
            if watch.paged is None:
                for notice in notices:
                    if notice.at >= run.started and notice.status == "firing" and \
                            watch.matches(notice):
                        if notice.receiver == watch.receiver:
                            watch.paged = notice
                            self.say(f"paged   {watch.alert.name} → {notice.receiver} after "
                                     f"{notice.at - run.started:.0f} s")
                            break
                        if notice.receiver not in watch.elsewhere:
                            watch.elsewhere.append(notice.receiver)
        if run.cleared is None:
            if all(w.paged is not None or now - run.started > w.page_timeout
                   for w in run.watches):
                self._clear(run)
            return
        for watch in run.watches:
            if watch.paged is None or watch.resolved_after is not None or \
                    watch.cleared_without_notice:
                continue
            if watch.send_resolved:
                resolved = [n.at for n in notices if n.at >= run.cleared and
                            n.status == "resolved" and watch.matches(n) and
                            n.receiver == watch.receiver]
                if resolved:
                    watch.resolved_after = min(resolved) - run.cleared
            elif not self._still_alerting(watch):
                watch.resolved_after = now - run.cleared
                watch.cleared_without_notice = True
        if all(w.paged is None or w.resolved_after is not None
               or now - run.cleared > w.resolve_timeout for w in run.watches):
            if run.group.drill.fault == "provider" and run.group.drill.provider:
                self.traffic.set(run.group.drill.provider, 0)
            run.finished = now
            self.say(f"done    {run.group.title}")

    def _still_alerting(self, watch: Watch) -> bool:
        states = watch.stack.query(f'ALERTS{{alertname="{watch.alert.name}"}}')
        return any(watch.provider is None or s["metric"].get("provider") == watch.provider
                   for s in states)


def _known_wait(group: Group, stack: Stack, system: Product) -> int:
    """Seconds a drill's fault needs before its signal can turn, known in advance, so they
    belong to its floor: a target taken out of discovery turns only when its series go
    stale (a stopped one fails its next scrape), and a call to a provider slower than the
    timeout is recorded only when the timeout ends it (a refused one at once). On a swarm a
    stopped process is a service scaled to nothing: its tasks leave discovery, as an
    undiscovered job's targets do; and the swarm's discovery asks the Docker API less often
    than file_sd notices a file change."""
    drill = group.drill
    if drill.fault == "undiscover" or (drill.fault == "stop" and system.stop_vanishes
                                       and drill.process in SCRAPED):
        return vanish(stack.spec, system.discovery_delay)
    timeout = stack.spec.provider_timeout.seconds
    if drill.fault == "provider" and float(dict(drill.controls).get("latency_ms", 0)) >= (
            timeout * 1000):
        return timeout
    return 0


def _kind(receiver: str) -> str:
    """The sink a receiver delivers to (receiver names are the spec's: pagerduty, slack …)."""
    return "email" if receiver.startswith("email") else receiver

