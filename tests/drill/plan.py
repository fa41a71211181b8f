"""Which drills run together: an injection per distinct fault, with what it breaks and what
the alerts it provokes need intact, and the rule for running two at the same time."""

from __future__ import annotations

from dataclasses import dataclass, field

from infra.monitoring.drills import Drill
from infra.monitoring.signals import SIGNALS
from infra.monitoring.spec import BurnAlert, Spec, ThresholdAlert
from tests.drill.system import JOBS

Alert = ThresholdAlert | BurnAlert
PROVIDER_SCOPED = ("payment_failure_rate", "provider_up", "provider_success_rate",
                   "processing_time")
PROCESS_OF_JOB = {job: name for name, job in JOBS.items()}
# Payments are created through the gateway and settle at the simulator (webhooks); the
# worker only speeds up what providers leave open, so no drill needs it but its own.
TRAFFIC = frozenset({"gateway", "database", "simulator"})


@dataclass
class Group:
    """One injection and the alerts it must provoke, each on the render of its scale."""

    drill: Drill
    alerts: list[tuple[Alert, int]] = field(default_factory=list)  # (alert, scale)
    breaks: set[str] = field(default_factory=set)  # "stop:exporter", "provider:visa", …
    needs: set[str] = field(default_factory=set)  # "exporter", "discovery:payment-gateway", …

    @property
    def title(self) -> str:
        return self.drill.describe()


def _target(resource: str) -> str:
    """What a broken resource takes away from the alerts that need it."""
    kind, _, what = resource.partition(":")
    return what if kind in ("stop", "freeze") else resource


def conflict(a: Group, b: Group) -> bool:
    """True when a and b cannot run at once: one breaks what the other needs, or both break
    the same thing (each drill's time-to-page counts from its own fault)."""
    broken_a = {_target(r) for r in a.breaks}
    broken_b = {_target(r) for r in b.breaks}
    return bool(broken_a & b.needs or broken_b & a.needs or broken_a & broken_b)


def _breaks(drill: Drill) -> set[str]:
    found = {f"stop:{name}" for name in drill.while_down}
    if drill.fault == "provider":
        found.add(f"provider:{drill.provider}")
    elif drill.fault in ("stop", "freeze"):
        found.add(f"{drill.fault}:{drill.process}")
    elif drill.fault == "undiscover":
        found.add(f"discovery:{drill.job}")
    else:
        found.add(f"seed:{drill.rows}")
    return found


def _needs(alert: Alert, drill: Drill) -> set[str]:
    needs: set[str] = set()
    if drill.fault in ("provider", "seed"):
        needs |= TRAFFIC
    source = SIGNALS[alert.signal].source if isinstance(alert, ThresholdAlert) else "events"
    if source == "events":
        needs.add("discovery:payment-gateway")
    elif source == "exporter":
        needs |= {"exporter", "discovery:payment-metrics-exporter"}
    elif isinstance(alert, ThresholdAlert) and alert.job is not None:
        needs.add(PROCESS_OF_JOB[alert.job] if drill.fault == "undiscover"
                  else f"discovery:{alert.job}")
    return needs - {_target(r) for r in _breaks(drill)}


def provider_of(alert: Alert, drill: Drill) -> str | None:
    """The provider label the alert must carry, if it is provider-scoped."""
    if isinstance(alert, ThresholdAlert) and alert.signal in PROVIDER_SCOPED:
        return drill.provider
    return None


# How much of the system a fault takes away: drills that need the whole system run first,
# then those that stop a worker or the exporter, then those that stop the gateway, the
# database or discovery, which nothing else can run beside.
RANK = {"provider": 0, "seed": 0, "redis": 0, "simulator": 1, "worker": 1,
        "reconciliation-worker": 1, "exporter": 1, "gateway": 2, "database": 2, "discovery": 2}


def rank(group: Group) -> int:
    return max(RANK[_target(r).split(":")[0]] for r in group.breaks)


def groups(spec: Spec, wanted: set[str] | None = None) -> list[Group]:
    """Every drill of every alert (or of the `wanted` ones), drills that do the same thing
    merged into one injection, the least disruptive first, then in spec order."""
    found: dict[tuple[object, ...], Group] = {}
    for alert in spec.every_alert():
        if wanted is not None and alert.name not in wanted:
            continue
        for drill in alert.drills:
            group = found.setdefault(drill.injection, Group(drill, breaks=_breaks(drill)))
            group.alerts.append((alert, drill.scale))
            group.needs |= _needs(alert, drill)
    return sorted(found.values(), key=rank)
