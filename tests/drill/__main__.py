"""`make drill`: the real processes, a real Prometheus and Alertmanager running the generated
files, local sinks, and every alert's drill; prints what fired where and how fast, and exits
non-zero when an alert did not page its sink in time or did not resolve.

    python -m tests.drill [--swarm] [--only ALERT ...] [--workdir DIR] [--report FILE]

With --swarm the product is the committed stack on a one-node swarm of the local engine
(tests/drill/swarm.py; `make drill-swarm`), not processes on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from infra.monitoring.render import SPEC_PATH
from infra.monitoring.spec import load
from tests.drill import plan, report, stacks, swarm, system
from tests.drill.runner import Runner
from tests.drill.stacks import SMTP_PASSWORD, Stack
from tests.drill.system import Product
from tests.drill.traffic import Traffic
from tests.sinks import HttpSink, MailSink

ROOT = Path(__file__).resolve().parents[2]
WARM_UP = 60  # seconds of traffic before the first fault, so every rate has a window
HEARTBEAT_TOLERANCE = 5  # seconds a beat may stray from group_interval


def _say(started: float) -> Callable[[str], None]:
    def say(message: str) -> None:
        print(f"[{time.monotonic() - started:7.1f}s] {message}", flush=True)

    return say


def _panels() -> list[tuple[str, str]]:
    found = []
    for path in sorted((ROOT / "monitoring/dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                expr = (target["expr"].replace("$provider", ".*")
                        .replace("$__rate_interval", "1m"))
                found.append((f"{path.stem}: {panel['title']}", expr))
    return found


def check_panels(stack: Stack, say: Callable[[str], None]) -> list[str]:
    """Every dashboard query returns data from the running processes (0, not "No data")."""
    queries = _panels()
    deadline = time.monotonic() + 120
    empty = [title for title, expr in queries if not stack.query(expr)]
    while empty and time.monotonic() < deadline:
        time.sleep(5)
        empty = [title for title, expr in queries if not stack.query(expr)]
    say(f"panels  {len(queries) - len(empty)} of {len(queries)} queries return data")
    return [f"dashboard panel without data: {title}" for title in empty]


def check_heartbeat(sink: HttpSink, stack: Stack) -> tuple[tuple[str, ...], list[str]]:
    beats = [n.at for n in sink.notices if n.receiver == "heartbeat" and n.channel == stack.channel]
    every = stack.spec.alertmanager.routes["heartbeat"].group_interval.seconds
    gaps = [b - a for a, b in itertools.pairwise(beats)]
    problems = []
    if len(gaps) < 3:
        problems.append(f"Watchdog: only {len(beats)} heartbeats")
    stray = [g for g in gaps if abs(g - every) > HEARTBEAT_TOLERANCE]
    if stray:
        problems.append(f"Watchdog: beats {', '.join(f'{g:.0f}' for g in stray)} s apart, "
                        f"not every {every} s")
    shown = f"{min(gaps):.0f}-{max(gaps):.0f} s apart" if gaps else "-"
    return (("Watchdog", "always firing", "x1", "yes" if beats else "NO", "heartbeat",
             f"{len(beats)} beats", f"every {every} s", shown, "-", "-"), problems)


def check_summary(mail: MailSink, stack: Stack, started: float) -> tuple[tuple[str, ...],
                                                                          list[str]]:
    name = stack.spec.daily_summary.name
    found = [(at, m) for at, m in mail.messages
             if m["Subject"] == "NileCare payments daily summary"
             and str(m["To"]).startswith(stack.channel + "@")]
    problems = [] if found else [f"{name}: no summary email"]
    if found and "Payments in the database:" not in mail.text(found[0][1]):
        problems.append(f"{name}: the summary email carries no numbers")
    ttp = f"{found[0][0] - started:.0f} s" if found else "-"
    return ((name, "its window open all day", "x1", "yes" if found else "NO", "email-summary",
             ttp, "-", "-", "-", "- (no notice by design)"), problems)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.drill", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", metavar="ALERT",
                        help="drill only this alert (repeatable)")
    parser.add_argument("--workdir", type=Path, help="keep logs and data here")
    parser.add_argument("--report", type=Path, help="also write the table to this file")
    parser.add_argument("--swarm", action="store_true",
                        help="drill the stack deployed on a one-node swarm of the local engine")
    args = parser.parse_args(argv)
    spec = load(ROOT / SPEC_PATH)
    wanted = set(args.only) if args.only else None
    groups = plan.groups(spec, wanted)
    if not groups:
        print(f"no drill matches {sorted(wanted or [])}", file=sys.stderr)
        return 2
    by_scale: dict[int, set[str]] = {1: set()}
    for group in groups:
        for alert, scale in group.alerts:
            by_scale.setdefault(scale, set()).add(alert.name)
    started = time.monotonic()
    say = _say(started)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="nilecare-drill-"))
    say(f"drill   {sum(len(g.alerts) for g in groups)} alert drills in {len(groups)} "
        f"injections, renders {', '.join(f'x{s}' for s in sorted(by_scale))}; logs in {workdir}")
    problems: list[str] = []
    with ExitStack() as stack:
        sink = stack.enter_context(HttpSink().serving())
        mail = stack.enter_context(MailSink(SMTP_PASSWORD).serving())
        if args.swarm:
            say("start   a one-node swarm: images, docker stack deploy, every task healthy")
            running: Product = stack.enter_context(swarm.running(workdir / "swarm"))
        else:
            say("start   MariaDB, Redis, simulator, gateway, workers, exporter")
            running = stack.enter_context(system.running(workdir / "system"))
        renders = {scale: stack.enter_context(stacks.running(
            workdir / f"x{scale}", scale, names, running, sink, mail))
            for scale, names in sorted(by_scale.items())}
        traffic = Traffic(running)
        stack.callback(traffic.close)
        traffic.start()
        full = renders[1]
        say(f"warm-up {WARM_UP} s of payments")
        time.sleep(WARM_UP)
        if wanted is None:
            problems += check_panels(full, say)
        runs = Runner(running, renders, sink, mail, traffic, say).run(groups)
        found = report.rows(runs)
        extra = []
        if wanted is None:
            beat, beat_problems = check_heartbeat(sink, full)
            summary, summary_problems = check_summary(mail, full, started)
            extra = [beat, summary]
            problems += beat_problems + summary_problems
            username = full.spec.alertmanager.smtp.username
            if not mail.logins or set(mail.logins) != {username}:
                problems.append(f"email: Alertmanager logged in as {sorted(set(mail.logins))}, "
                                f"not {username} with the password file")
        say(f"traffic {dict(sorted(traffic.replies.items()))}")
    problems += [f"{row.cells[0]} ({row.cells[1]}): {p}" for row in found for p in row.problems]
    missing = report.covered(spec, runs) if wanted is None else []
    problems += [f"{name}: no drill ran" for name in missing]
    text = report.table(found, extra)
    print("\n" + text + "\n")
    if args.report:
        args.report.write_text(text + "\n")
    for problem in problems:
        print(f"FAIL {problem}")
    where = " on the swarm" if args.swarm else ""
    print(f"{'FAILED' if problems else 'PASSED'}: {len(found)} alert drills{where} in "
          f"{(time.monotonic() - started) / 60:.1f} min"
          + (f"; logs in {workdir}" if problems or args.workdir else ""))
    if not problems and args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
