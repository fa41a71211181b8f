"""Reconciliation runs one at a time: concurrent API requests while a statement imports, two
reconciliation workers executing them, one finding per statement line. Real gateway and
worker processes on MariaDB."""

from __future__ import annotations

import csv
import itertools
import json
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path

import httpx
from sqlalchemy import func, select, update

from service.db.models import PaymentReconciliation, ReconciliationRun
from service.reconciliation import runs
from service.reconciliation.schedule import DailyRequest
from service.services.context import Context
from tests.clock import MovableClock
from tests.integration.test_api import auth
from tests.integration.workers.conftest import Process, wait_for
from tests.servers import free_port

LINES = 3000


def _statement(directory: Path) -> None:
    """LINES credits no payment explains: each must become exactly one `missing` issue."""
    folder = directory / "bank_of_khartoum"
    folder.mkdir(parents=True)
    (directory / "banks.json").write_text(json.dumps({"bank_of_khartoum":
                                                      {"facility_id": "fac-1"}}))
    day = date.today() - timedelta(days=3)
    with (folder / f"{day}.csv").open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["value_date", "amount", "currency", "reference", "description"])
        for n in range(LINES):
            out.writerow([day, f"{500 + n}.00", "SDG", f"NC-UNKNOWN-{n:06d}", "transfer"])


def test_concurrent_run_requests_run_one_at_a_time_and_judge_each_line_once(
        ctx: Context, worker_env: dict[str, str], spawn: Callable[..., Process],
        tmp_path: Path) -> None:
    statements = tmp_path / "statements"
    _statement(statements)
    port = free_port()
    env = {**worker_env, "STATEMENT_DIR": str(statements), "GATEWAY_PORT": str(port),
           "WORKER_POLL_INTERVAL_SECONDS": "0.2", "RATE_LIMIT_PER_MINUTE": "10000"}
    gateway = spawn(env, "serve")
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: _answers(f"{url}/health/ready"), 30, "the gateway")
    workers = [spawn(env, "reconciliation-worker", "--heartbeat", str(tmp_path / f"beat{i}"))
               for i in range(2)]

    replies: list[httpx.Response] = []

    def wave(size: int = 4) -> list[threading.Thread]:
        barrier = threading.Barrier(size)

        def request() -> None:
            barrier.wait()
            replies.append(httpx.post(f"{url}/api/v1/reconciliation/runs", headers=auth(),
                                      timeout=30))

        threads = [threading.Thread(target=request) for _ in range(size)]
        for thread in threads:
            thread.start()
        return threads

    first = wave()
    # A second wave arrives while the first run is importing and matching.
    wait_for(lambda: _runs(ctx, "running") > 0, 30, "a run to start")
    for thread in [*first, *wave()]:
        thread.join(30)

    assert [r.status_code for r in replies] == [202] * 8, [r.text for r in replies]
    wait_for(lambda: _runs(ctx, "requested") + _runs(ctx, "running") == 0, 120,
             "every requested run to finish")
    for process in workers:
        process.terminate()
    gateway.popen.terminate()  # uvicorn ends by re-raising SIGTERM: no exit code to check

    with ctx.sessions() as session:
        per_line = session.execute(
            select(PaymentReconciliation.statement_line_id, func.count())
            .group_by(PaymentReconciliation.statement_line_id)).all()
        done = session.execute(
            select(ReconciliationRun.public_id, ReconciliationRun.status,
                   ReconciliationRun.started_at, ReconciliationRun.finished_at,
                   ReconciliationRun.lines)
            .order_by(ReconciliationRun.started_at)).all()
    assert len(per_line) == LINES and {n for _, n in per_line} == {1}
    # Requests that arrived together joined one queued run: at most one per wave, plus
    # the schedule's own run of the day.
    assert 1 <= len(done) <= 3
    assert {r.status for r in done} == {"completed"}
    assert sum(r.lines for r in done) == LINES  # each line judged by exactly one run
    for before, after in itertools.pairwise(done):
        assert before.finished_at <= after.started_at, done  # never two at once
    assert {r.json()["run_id"] for r in replies} <= {r.public_id for r in done}


def _runs(ctx: Context, status: str) -> int:
    with ctx.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(ReconciliationRun)
                                  .where(ReconciliationRun.status == status)) or 0)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_the_days_run_is_requested_once_however_many_workers_ask(ctx: Context) -> None:
    settings = ctx.settings.model_copy(update={"reconciliation_time": dt_time(0, 0)})
    first, second = DailyRequest(settings), DailyRequest(settings)
    # Finance asked for a run that has not started: the schedule takes it as the day's.
    asked, _ = runs.request(ctx.sessions, "fin-1")
    assert first(ctx.sessions) == asked
    assert second(ctx.sessions) is None  # another worker: the day has its run
    with ctx.sessions.begin() as session:  # it ran
        session.execute(update(ReconciliationRun).values(status="completed", slot=None))
    assert second(ctx.sessions) is None and first(ctx.sessions) is None
    with ctx.sessions() as session:
        scheduled = session.execute(select(ReconciliationRun.public_id,
                                      ReconciliationRun.scheduled_for)).all()
    assert [r.public_id for r in scheduled] == [asked]
    assert scheduled[0].scheduled_for == datetime.now(settings.zone).date()


def test_the_daily_run_is_requested_when_its_local_time_comes(
        ctx: Context, clock: MovableClock) -> None:
    """RECONCILIATION_TIME (02:00) in TIMEZONE (Khartoum), on a clock the test moves: not a
    minute before, once at the time, and again the next day."""
    zone = ctx.settings.zone
    day = clock.now().replace(tzinfo=UTC).astimezone(zone).date() + timedelta(days=1)
    at = ctx.settings.reconciliation_time
    clock.move_to(datetime.combine(day, at, zone).astimezone(UTC).replace(tzinfo=None)
                  - timedelta(minutes=1))
    request = DailyRequest(ctx.settings, clock)
    assert request(ctx.sessions) is None  # 01:59
    clock.advance(timedelta(minutes=1))
    first = request(ctx.sessions)
    assert first is not None and request(ctx.sessions) is None
    with ctx.sessions.begin() as session:  # it ran
        session.execute(update(ReconciliationRun).values(status="completed", slot=None))
    clock.advance(timedelta(days=1))
    second = request(ctx.sessions)
    assert second is not None and second != first
    with ctx.sessions() as session:
        days = dict(session.execute(select(ReconciliationRun.public_id,
                                           ReconciliationRun.scheduled_for)).tuples().all())
    assert days == {first: day, second: day + timedelta(days=1)}

