"""50 identical keyed POSTs over two gateway processes sharing MariaDB make one payment."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, func, select

from service.db import migrate
from service.db.models import Payment, PaymentAttempt
from service.settings import Settings
from tests.conftest import base_environ, random_key
from tests.integration.test_api import auth, body
from tests.servers import free_port
from tests.simulator import running_simulator


def _start_gateway(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--port", str(port)],
        env={**os.environ, **env},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(log.read_text())
        try:
            if httpx.get(f"{url}/health/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready:\n{log.read_text()}")


@pytest.fixture
def two_gateways(
    mysql_url: str, redis_url: str, tmp_path: Path, settings_factory: Callable[..., Settings]
) -> Iterator[tuple[list[str], str]]:
    with running_simulator(settings_factory()) as sim:
        engine = create_engine(mysql_url)
        migrate.prepare(engine)
        engine.dispose()
        env = base_environ(
            DATABASE_URL=mysql_url,
            REDIS_URL=redis_url,
            PROVIDER_SIMULATOR_URL=sim,
            DATA_DIR=str(tmp_path),
            RATE_LIMIT_PER_MINUTE="10000",
        )
        ports = [free_port(), free_port()]
        logs = [tmp_path / f"gw{i}.log" for i in range(2)]
        processes = [_start_gateway(env, p, log) for p, log in zip(ports, logs, strict=True)]
        try:
            urls = [f"http://127.0.0.1:{p}" for p in ports]
            for url, process, log in zip(urls, processes, logs, strict=True):
                _wait_ready(url, process, log)
            yield urls, sim
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=20)


def test_fifty_concurrent_identical_posts_create_one_payment(
    two_gateways: tuple[list[str], str], mysql_url: str
) -> None:
    urls, sim = two_gateways
    # A slow provider keeps the first request in flight while the others arrive.
    httpx.put(
        f"{sim}/_control/visa", json={"mode": "slow", "latency_ms": 400, "settle_after_seconds": 0}
    )
    key = random_key()
    headers = {**auth(), "Idempotency-Key": key}
    barrier = threading.Barrier(50)
    results: list[httpx.Response] = []
    lock = threading.Lock()

    def post(i: int) -> None:
        with httpx.Client(timeout=30) as client:
            barrier.wait()
            response = client.post(
                f"{urls[i % 2]}/api/v1/payments", json=body("visa"), headers=headers
            )
        with lock:
            results.append(response)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 50
    codes = sorted({r.status_code for r in results})
    assert set(codes) <= {201, 409}, [r.text for r in results if r.status_code not in (201, 409)]
    created = {r.json()["id"] for r in results if r.status_code == 201}
    assert len(created) == 1
    assert all(r.json()["field"] == "Idempotency-Key" for r in results if r.status_code == 409)
    # After the dust settles, the key replays the one payment's first response.
    replay = httpx.post(f"{urls[0]}/api/v1/payments", json=body("visa"), headers=headers)
    assert replay.status_code == 201 and replay.json()["id"] in created
    engine = create_engine(mysql_url)
    with engine.connect() as c:
        assert c.execute(select(func.count(Payment.id))).scalar() == 1
        assert c.execute(select(func.count(PaymentAttempt.id))).scalar() == 1
    engine.dispose()
