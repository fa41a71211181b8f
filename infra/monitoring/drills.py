"""Fire drills as the spec writes them: the fault that provokes an alert on the running system."""

from __future__ import annotations

from dataclasses import dataclass

from infra.monitoring.node import Cursor
from service.domain.catalog import BY_CODE

FAULTS = ("provider", "stop", "freeze", "undiscover", "seed")
PROCESSES = ("gateway", "worker", "reconciliation-worker", "exporter", "simulator", "database",
             "redis")
SEED_ROWS = ("awaiting_verification", "unmatched_statement_lines")
# Durations divided by at most this much still leave whole seconds for Prometheus.
MAX_SCALE = 3600

Control = tuple[tuple[str, str | int | float | bool], ...]


@dataclass(frozen=True)
class Drill:
    """One fault. `provider` faults set simulator controls and send payments to the provider;
    `while_down` processes are stopped for the drill's length; `scale` runs it on a render
    whose durations are divided by it."""

    fault: str
    provider: str | None = None
    controls: Control = ()
    process: str | None = None
    job: str | None = None
    rows: str | None = None
    count: int = 0
    while_down: tuple[str, ...] = ()
    scale: int = 1

    @property
    def injection(self) -> tuple[object, ...]:
        """What is done to the system: drills that do the same thing share one injection."""
        return (self.fault, self.provider, self.controls, self.process, self.job, self.rows,
                self.count, self.while_down)

    def describe(self) -> str:
        if self.fault == "provider":
            what = ", ".join(f"{k}={v}" for k, v in self.controls)
            text = f"{self.provider}: {what}"
        elif self.fault in ("stop", "freeze"):
            text = f"{self.fault} {self.process}"
        elif self.fault == "undiscover":
            text = f"no {self.job} target"
        else:
            text = f"{self.count} {self.rows.replace('_', ' ') if self.rows else ''}"
        if self.while_down:
            text += f" ({', '.join(self.while_down)} down)"
        return text


def _value(c: Cursor) -> str | int | float | bool:
    raw = c.scalar()
    if raw in ("true", "false"):
        return raw == "true"
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        return float(raw)
    except ValueError:
        return raw


def parse_drills(c: Cursor, long_enough_to_scale: bool) -> tuple[Drill, ...]:
    """A mapping or a list of mappings; every alert needs at least one drill."""
    cursors = c.items() if c.node.tag == "tag:yaml.org,2002:seq" else [c]
    if not cursors:
        c.fail("an alert needs at least one drill")
    return tuple(_drill(d, long_enough_to_scale) for d in cursors)


def _drill(c: Cursor, long_enough_to_scale: bool) -> Drill:
    fault = c.get("fault").choice(*FAULTS)
    common = ("fault", "while_down", "scale")
    fields = {"provider": ("provider", "set"), "stop": ("process",), "freeze": ("process",),
              "undiscover": ("job",), "seed": ("rows", "count")}[fault]
    c.only(*common, *fields)
    while_down = c.get("while_down").strings() if c.has("while_down") else ()
    for name in while_down:
        if name not in PROCESSES:
            c.get("while_down").fail(f"'{name}' is not one of {', '.join(PROCESSES)}")
    scale = c.get("scale").integer() if c.has("scale") else 1
    if not 1 <= scale <= MAX_SCALE:
        c.get("scale").fail(f"must be between 1 and {MAX_SCALE}")
    if scale > 1 and not long_enough_to_scale:
        c.get("scale").fail("only alerts that take 10m or more to fire or clear (their `for` or "
                            "their longest window) may run time-scaled")
    if fault == "provider":
        provider = c.get("provider").name()
        spec = BY_CODE.get(provider)
        if spec is None or not spec.electronic:
            c.get("provider").fail(f"'{provider}' is not an electronic provider")
        controls = tuple(sorted((k, _value(v)) for k, v in c.get("set").mapping()))
        if not controls:
            c.get("set").fail("set at least one simulator control")
        return Drill(fault, provider=provider, controls=controls, while_down=while_down,
                     scale=scale)
    if fault in ("stop", "freeze"):
        return Drill(fault, process=c.get("process").choice(*PROCESSES),
                     while_down=while_down, scale=scale)
    if fault == "undiscover":
        return Drill(fault, job=c.get("job").name(), while_down=while_down, scale=scale)
    count = c.get("count").integer()
    if count < 1:
        c.get("count").fail("seed at least one row")
    return Drill(fault, rows=c.get("rows").choice(*SEED_ROWS), count=count,
                 while_down=while_down, scale=scale)
