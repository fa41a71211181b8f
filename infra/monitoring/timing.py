"""How long an alert takes to page, and the check that it pages within its response target.

floor: once the signal has crossed, the longest the pipeline can take: the next scrape,
the next evaluation, `for`, and the route's group_wait. A drill's time-to-page minus the
floor is what the pipeline hides (a window nobody counted, a scrape that hangs).
worst case: the floor plus the signal's own turn (signals.SIGNALS[...].turn, and for a burn
alert the fastest of its window pairs). The render fails when a worst case passes the
alert's response target.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.monitoring.duration import Duration
from infra.monitoring.signals import SIGNALS
from infra.monitoring.spec import BurnAlert, Spec, SpecError, ThresholdAlert

Alert = ThresholdAlert | BurnAlert


@dataclass(frozen=True)
class Timing:
    name: str
    severity: str
    turn: int
    floor: int
    target: Duration

    @property
    def worst_case(self) -> int:
        return self.turn + self.floor


def group_wait(spec: Spec, alert: Alert) -> Duration:
    am = spec.alertmanager
    if alert.name == am.fast_alert:
        return am.fast_group_wait
    return am.routes[alert.severity].group_wait


def turn(spec: Spec, alert: Alert) -> int:
    if isinstance(alert, ThresholdAlert):
        return SIGNALS[alert.signal].turn(spec, alert)
    # A total fault: the long window's error ratio passes factor x budget after that share
    # of the window (the short one sooner); the alert fires on whichever pair crosses first.
    budget = spec.slo.budget
    return min(int(w.long.seconds * w.factor * budget) for w in alert.windows)


def timing(spec: Spec, alert: Alert) -> Timing:
    p = spec.prometheus
    floor = (p.scrape_interval.seconds + p.evaluation_interval.seconds + alert.for_.seconds
             + group_wait(spec, alert).seconds)
    target = (alert.response_target if isinstance(alert, ThresholdAlert)
              and alert.response_target else spec.alertmanager.routes[alert.severity]
              .response_target)
    return Timing(alert.name, alert.severity, turn(spec, alert), floor, target)


def timings(spec: Spec) -> list[Timing]:
    return [timing(spec, a) for a in spec.every_alert()]


def check(spec: Spec) -> None:
    """Raise SpecError naming every alert that cannot page within its response target."""
    late = [t for t in timings(spec) if t.worst_case > t.target.seconds]
    if late:
        raise SpecError("alerts that cannot page within their response target:\n  " + "\n  ".join(
            f"{t.name} ({t.severity}): turn {t.turn}s + floor {t.floor}s = {t.worst_case}s "
            f"> {t.target}" for t in late))
