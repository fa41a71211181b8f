"""The drill's verdict: one row per alert and drill, and what each row must show to pass."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from infra.monitoring.spec import Spec
from tests.drill.runner import CRITICAL_SLACK, Run, Watch
from tests.drill.stacks import PD_KEY

HEADER = ("alert", "drill", "render", "fired", "sink", "time-to-page", "floor", "ttp - floor",
          "target", "resolved")


@dataclass(frozen=True)
class Row:
    cells: tuple[str, ...]
    problems: tuple[str, ...]


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} s"


def judge(run: Run, watch: Watch) -> Row:
    problems = []
    ttp = watch.paged.at - run.started if watch.paged else None
    if run.failed:
        problems.append(run.failed)
    if watch.paged is None:
        problems.append(f"no page at {watch.receiver}"
                        + (f" (it reached {', '.join(watch.elsewhere)})" if watch.elsewhere
                           else ""))
    elif watch.elsewhere:
        problems.append(f"also reached {', '.join(watch.elsewhere)}")
    if watch.paged is not None:
        problems += _content(watch)
        if watch.resolved_after is None:
            problems.append("never resolved" if watch.send_resolved else "never cleared")
    critical = watch.alert.severity == "critical" and watch.stack.scale == 1
    if critical and ttp is not None:
        if ttp - watch.floor > CRITICAL_SLACK:
            problems.append(f"paged {ttp - watch.floor:.0f} s after its floor "
                            f"(> {CRITICAL_SLACK} s)")
        if ttp > watch.target:
            problems.append(f"paged after {ttp:.0f} s, over its {watch.target} s target")
    if watch.resolved_after is None:
        resolved = "-"
    elif watch.cleared_without_notice:
        resolved = f"cleared {watch.resolved_after:.0f} s (digest: no notice)"
    else:
        resolved = f"notice {watch.resolved_after:.0f} s"
    cells = (watch.alert.name, run.group.title, f"x{watch.stack.scale}",
             "yes" if watch.paged else "NO", watch.paged.receiver if watch.paged else "-",
             _seconds(ttp), f"{watch.floor} s",
             f"{ttp - watch.floor:+.0f} s" if ttp is not None else "-",
             f"{watch.target} s", resolved)
    return Row(cells, tuple(problems))


def _content(watch: Watch) -> list[str]:
    """What on-call must find in the notification itself."""
    assert watch.paged is not None
    notice, spec = watch.paged, watch.stack.spec
    problems = []
    if spec.runbook_url(watch.alert.runbook) not in notice.text:
        problems.append("the page carries no runbook link")
    if "{{" in notice.text or "<no value>" in notice.text:
        problems.append("the page shows an unexpanded template")
    if notice.receiver == "pagerduty" and notice.body.get("routing_key") != PD_KEY:
        problems.append("the PagerDuty routing key is not the one in routing_key_file")
    if notice.receiver == "slack" and notice.body.get("channel") != spec.alertmanager.slack_channel:
        problems.append(f"posted to {notice.body.get('channel')}, not the spec's channel")
    return problems


def rows(runs: list[Run]) -> list[Row]:
    return [judge(run, watch) for run in runs for watch in run.watches]


def table(found: list[Row], extra: Sequence[tuple[str, ...]] = ()) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for row in found:
        lines.append("| " + " | ".join(row.cells) + " |")
    for cells in extra:
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def covered(spec: Spec, runs: list[Run]) -> list[str]:
    """Alerts of the spec that no drill watched (a drill run with --only leaves some)."""
    watched = {w.alert.name for r in runs for w in r.watches}
    return [a.name for a in spec.every_alert() if a.name not in watched]
