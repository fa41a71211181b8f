"""A gateway killed (SIGKILL) while the provider is charging: the client's retry with the
same Idempotency-Key on another gateway gets the one payment, the provider was charged once,
and the payment worker settles it. Real gateway and worker processes on MariaDB."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, func, select, update

from service.db import migrate
from service.db.models import IdempotencyKey, Payment
from service.settings import Settings
from tests.conftest import base_environ, random_key
from tests.e2e.test_idempotency_race import _start_gateway, _wait_ready
from tests.integration.test_api import auth, body
from tests.servers import free_port
from tests.simulator import running_simulator

LOCK_SECONDS = 3


@pytest.fixture
def system(mysql_url: str, redis_url: str, tmp_path: Path,
           settings_factory: Callable[..., Settings]) -> Iterator[tuple[dict[str, str], str]]:
    with running_simulator(settings_factory()) as sim:
        engine = create_engine(mysql_url)
        migrate.prepare(engine)
        engine.dispose()
        env = base_environ(DATABASE_URL=mysql_url, REDIS_URL=redis_url,
                           PROVIDER_SIMULATOR_URL=sim, DATA_DIR=str(tmp_path),
                           PROVIDER_TIMEOUT_SECONDS="10", RATE_LIMIT_PER_MINUTE="10000",
                           IDEMPOTENCY_LOCK_SECONDS=str(LOCK_SECONDS),
                           WORKER_POLL_INTERVAL_SECONDS="0.2", LOG_LEVEL="INFO",
                           GATEWAY_PUBLIC_URL="http://127.0.0.1:9")
        yield env, sim


def test_a_charge_cut_short_by_a_gateway_crash_is_made_once(
        system: tuple[dict[str, str], str], mysql_url: str, tmp_path: Path) -> None:
    env, sim = system
    httpx.put(f"{sim}/_control/visa",
              json={"mode": "slow", "latency_ms": 2000, "settle_after_seconds": 0})
    ports = [free_port(), free_port()]
    logs = [tmp_path / f"gw{i}.log" for i in range(2)]
    gateways = [_start_gateway(env, port, log) for port, log in zip(ports, logs, strict=True)]
    engine = create_engine(mysql_url)
    try:
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        for url, process, log in zip(urls, gateways, logs, strict=True):
            _wait_ready(url, process, log)
        key = random_key()
        headers = {**auth(), "Idempotency-Key": key}
        lost: list[BaseException] = []

        def first_attempt() -> None:
            try:
                httpx.post(f"{urls[0]}/api/v1/payments", json=body("visa"), headers=headers,
                           timeout=30)
            except httpx.HTTPError as exc:  # its gateway dies under it
                lost.append(exc)

        thread = threading.Thread(target=first_attempt)
        thread.start()
        deadline = time.monotonic() + 20
        with engine.connect() as c:  # the payment is recorded and the provider is being asked
            while c.execute(select(func.count()).select_from(Payment)
                            .where(Payment.status == "processing")).scalar_one() == 0:
                assert time.monotonic() < deadline, "the charge never started"
                time.sleep(0.05)
                c.rollback()
        # Recorded means the call is about to leave (a connection to open first); the
        # provider takes 2 s to answer, so half a second later the gateway is mid-call.
        time.sleep(0.5)
        gateways[0].send_signal(signal.SIGKILL)
        gateways[0].wait(10)
        thread.join(30)
        assert lost, "the first attempt should have lost its connection"

        # The client retries on the other gateway: still locked, so 409 with Retry-After.
        busy = httpx.post(f"{urls[1]}/api/v1/payments", json=body("visa"), headers=headers)
        assert busy.status_code == 409, busy.text
        wait = int(busy.headers["Retry-After"])
        assert 1 <= wait <= LOCK_SECONDS + 1 and busy.json()["field"] == "Idempotency-Key"
        time.sleep(wait)
        retry = httpx.post(f"{urls[1]}/api/v1/payments", json=body("visa"), headers=headers)
        assert retry.status_code == 201, retry.text
        again = httpx.post(f"{urls[1]}/api/v1/payments", json=body("visa"), headers=headers)
        assert again.json() == retry.json()

        with engine.connect() as c:
            [payment] = c.execute(select(Payment.public_id, Payment.reference, Payment.status)
                                  ).all()
            assert c.execute(select(func.count()).select_from(IdempotencyKey)).scalar_one() == 1
        assert retry.json()["id"] == payment.public_id
        # The provider was asked to charge this payment once, by the gateway that died.
        calls = httpx.get(f"{sim}/_calls").json()
        charges = [c for c in calls if c["operation"] == "initiate"]
        assert [c["reference"] for c in charges] == [payment.reference]

        # The payment worker asks the provider and settles it.
        worker_log = tmp_path / "worker.log"
        worker = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "worker", "--no-tasks",
             "--heartbeat", str(tmp_path / "beat")],
            env={**os.environ, **env, "WORKER_METRICS_PORT": str(free_port())},
            stdout=worker_log.open("wb"), stderr=subprocess.STDOUT)
        try:
            with engine.begin() as c:  # due now rather than in 30 s
                c.execute(update(Payment).values(next_check_at=func.utc_timestamp(6)))
            deadline = time.monotonic() + 30
            while httpx.get(f"{urls[1]}/api/v1/payments/{payment.public_id}",
                            headers=auth()).json()["status"] != "confirmed":
                assert time.monotonic() < deadline, worker_log.read_text()[-3000:]
                time.sleep(0.2)
        finally:
            worker.terminate()
            worker.wait(20)
        charges = [c for c in httpx.get(f"{sim}/_calls").json() if c["operation"] == "initiate"]
        assert len(charges) == 1
    finally:
        engine.dispose()
        for process in gateways:
            if process.poll() is None:
                process.terminate()
                process.wait(20)
