"""What a metric family is: its name, kind, help, labels and the process that exposes it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["counter", "gauge", "histogram"]
# "events" are counted where they happen (gateway, payment worker, reconciliation worker) and
# scraped from each of them; "exporter" families are business state read from the database.
Process = Literal["events", "exporter"]


@dataclass(frozen=True)
class MetricSpec:
    """One metric family: name (counters without `_total`), kind, labels, owning process."""

    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    process: Process = "events"

    @property
    def series(self) -> tuple[str, ...]:
        """The sample names this family puts on the wire."""
        if self.kind == "counter":
            return (f"{self.name}_total",)
        if self.kind == "histogram":
            return (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")
        return (self.name,)
