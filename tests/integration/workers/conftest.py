"""Fixtures for the worker tiers: a migrated MariaDB database, the provider simulator in a
thread, and helpers to create payments and run worker processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import create_engine, select, update

from service.db.migrate import prepare
from service.db.models import Payment
from service.domain.caller import Caller
from service.services.context import Context
from service.services.creation import Creation
from service.services.payments import NewPayment, PaymentService
from service.settings import Settings, load
from tests.clock import MovableClock
from tests.conftest import base_environ
from tests.servers import free_port

ACCOUNTANT = Caller("test-accountant", frozenset({"accountant"}), "fac-1")


@pytest.fixture(scope="session")
def simulator_url() -> Iterator[str]:
    from service.simulator.app import create_simulator

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_simulator(load(base_environ())),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "simulator did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(5)


@pytest.fixture
def control(simulator_url: str) -> Iterator[Callable[..., None]]:
    """Set a simulator control for one provider; every touched provider is reset after."""
    touched: set[str] = set()

    def put(provider: str, **values: Any) -> None:
        touched.add(provider)
        httpx.put(f"{simulator_url}/_control/{provider}", json=values).raise_for_status()

    yield put
    for provider in touched:
        httpx.put(f"{simulator_url}/_control/{provider}",
                  json={"mode": "healthy", "latency_ms": 0, "decline_rate": 0.0,
                        "settle_after_seconds": 2.0, "send_webhooks": True})


@pytest.fixture
def worker_env(mysql_url: str, simulator_url: str, tmp_path: Path) -> dict[str, str]:
    """The environment of a worker on a migrated database (also used for subprocesses)."""
    env = base_environ(DATABASE_URL=mysql_url, PROVIDER_SIMULATOR_URL=simulator_url,
                       DATA_DIR=str(tmp_path / "data"), LOG_LEVEL="INFO",
                       WORKER_POLL_INTERVAL_SECONDS="0.2",
                       # Nothing listens here: webhooks are off in these tests anyway.
                       GATEWAY_PUBLIC_URL="http://127.0.0.1:9")
    engine = create_engine(mysql_url)
    prepare(engine)
    engine.dispose()
    return env


@pytest.fixture
def ctx(worker_env: dict[str, str], clock: MovableClock) -> Iterator[Context]:
    context = Context.build(load(worker_env), clock=clock)
    yield context
    context.close()


@pytest.fixture
def settings(ctx: Context) -> Settings:
    return ctx.settings


def create_payments(ctx: Context, count: int, provider: str = "zain_cash",
                    amount: str = "150.00") -> list[int]:
    service = Creation(PaymentService(ctx))
    ids = []
    for n in range(count):
        outcome = service.create(ACCOUNTANT, NewPayment(
            provider, Decimal(amount), "SDG", "fac-1", f"patient-{n}",
            payer_phone="+249912345678"), None)
        with ctx.sessions() as session:
            ids.append(session.scalars(select(Payment.id).where(
                Payment.public_id == outcome.body["id"])).one())
    return ids


def make_due(ctx: Context, ids: list[int]) -> None:
    with ctx.sessions.begin() as session:
        session.execute(update(Payment).where(Payment.id.in_(ids))
                        .values(next_check_at=ctx.clock.now()))


def statuses(ctx: Context, ids: list[int]) -> dict[int, str]:
    with ctx.sessions() as session:
        rows = session.execute(select(Payment.id, Payment.status).where(Payment.id.in_(ids)))
        return {row.id: row.status for row in rows}


@dataclass
class Process:
    popen: subprocess.Popen[bytes]
    log: Path

    def terminate(self, seconds: float = 15) -> None:
        """SIGTERM, then insist on a clean exit; a failure shows the process's own log."""
        self.popen.send_signal(signal.SIGTERM)
        code = self.popen.wait(seconds)
        tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])
        assert code == 0, f"exit code {code}; last log lines:\n{tail}"

    def events(self, name: str) -> list[dict[str, Any]]:
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                record = json.loads(line)
                if record.get("event") == name:
                    found.append(record)
        return found


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Process]]:
    started: list[Process] = []

    def run(env: dict[str, str], *args: str) -> Process:
        log = tmp_path / f"proc-{len(started)}.log"
        handle = log.open("wb")
        # Each worker serves its counters on a port of its own.
        ports = {"WORKER_METRICS_PORT": str(free_port()),
                 "RECONCILIATION_METRICS_PORT": str(free_port())}
        popen = subprocess.Popen([sys.executable, "-m", "service.cli", *args],
                                 env={**os.environ, **ports, **env}, stdout=handle,
                                 stderr=subprocess.STDOUT)
        process = Process(popen, log)
        started.append(process)
        return process

    yield run
    for process in started:
        if process.popen.poll() is None:
            process.popen.kill()
            process.popen.wait(10)


def wait_for(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds}s waiting for {what}")
        time.sleep(0.1)
