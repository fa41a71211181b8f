"""The spec's dashboards: rows of panels, each with its queries."""

from __future__ import annotations

from dataclasses import dataclass

from infra.monitoring.node import Cursor

PANEL_TYPES = ("timeseries", "stat", "bargauge", "table")


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

def parse_dashboard(c: Cursor) -> Dashboard:
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
                    t.get("instant").boolean() if t.has("instant") else False,
                ))
            if not targets:
                p.get("targets").fail("a panel needs at least one query")
            panels.append(Panel(p.get("title").text(), p.get("type").choice(*PANEL_TYPES),
                                p.get("unit").text(), w.integer(), p.get("h").integer(),
                                tuple(targets)))
        rows.append(Row(r.get("title").text(), tuple(panels)))
    return Dashboard(c.get("uid").name(), c.get("title").text(), c.get("tags").strings(),
                     tuple(rows))

