"""`nilecare dev` as a new user meets it: every process of the product on one machine, on
free ports, a payment with each of the twelve providers, the exporter's numbers, and a
clean stop on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.domain.catalog import PROVIDERS
from service.settings import Settings
from service.workers.heartbeat import fresh
from tests.servers import free_port

JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+")


def _children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _wait(what: str, seconds: float, check: object) -> object:
    deadline = time.monotonic() + seconds
    while True:
        value = check() if callable(check) else None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds}s waiting for {what}")
        time.sleep(0.2)


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path, dict[str, int]]]:
    ports = {"gateway": free_port(), "exporter": free_port(), "simulator": free_port(),
             "worker": free_port(), "reconciliation": free_port()}
    # Only what this test sets: a developer's own settings must not leak in.
    env = {k: v for k, v in os.environ.items() if k.upper() not in Settings.env_names()}
    env.update(GATEWAY_PORT=str(ports["gateway"]), EXPORTER_PORT=str(ports["exporter"]),
               WORKER_METRICS_PORT=str(ports["worker"]),
               RECONCILIATION_METRICS_PORT=str(ports["reconciliation"]),
               LOG_LEVEL="INFO", WORKER_POLL_INTERVAL_SECONDS="0.5")
    log = tmp_path / "dev.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "dev", "--data-dir", str(tmp_path / "var"),
             "--simulator-port", str(ports["simulator"])],
            env=env, stdout=handle, stderr=subprocess.STDOUT)
    try:
        yield process, log, ports
    finally:
        if process.poll() is None:
            for child in _children(process.pid):
                os.kill(child, signal.SIGKILL)
            process.kill()
            process.wait(10)


def test_dev_runs_every_process_and_stops_them_all_on_sigterm(
        dev: tuple[subprocess.Popen[bytes], Path, dict[str, int]], tmp_path: Path) -> None:
    process, log, ports = dev

    def token() -> str | None:
        assert process.poll() is None, log.read_text(errors="replace")[-3000:]
        text = log.read_text(errors="replace")
        found = JWT.search(text.split("NileCare Payments is running", 1)[-1])
        return found.group(0) if "NileCare Payments is running" in text and found else None

    jwt = str(_wait("the banner with the token", 90, token))
    banner = log.read_text()
    assert f"http://127.0.0.1:{ports['exporter']}/metrics" in banner
    gateway = f"http://127.0.0.1:{ports['gateway']}"
    headers = {"Authorization": f"Bearer {jwt}"}
    created: dict[str, dict[str, str]] = {}
    with httpx.Client(base_url=gateway, headers=headers, timeout=15) as client:
        for spec in PROVIDERS:
            body = {"provider": spec.code, "amount": "150.00", "currency": "SDG",
                    "patient_id": f"p-{spec.code}"}
            if spec.needs_phone:
                body["payer_phone"] = "+249912345678"
            reply = client.post("/api/v1/payments", json=body)
            assert reply.status_code == 201, (spec.code, reply.text)
            created[spec.code] = reply.json()
        assert {p["status"] for c, p in created.items() if c in ("cash", "cheque")} == {
            "awaiting_verification"}
        # A wallet settles at the simulator after a delay and tells the gateway by webhook.
        zain = created["zain_cash"]["id"]
        _wait("zain_cash to be confirmed", 30,
              lambda: client.get(f"/api/v1/payments/{zain}").json()["status"] == "confirmed")

    metrics = httpx.get(f"http://127.0.0.1:{ports['exporter']}/metrics", timeout=10).text
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(metrics) for s in family.samples}
    assert samples[("nilecare_database_up", ())] == 1
    for spec in PROVIDERS:
        assert samples[("nilecare_provider_transactions",
                        (("provider", spec.code), ("window", "5m")))] == 1
    # Both workers serve their own counters where the banner says.
    for name in ("worker", "reconciliation"):
        url = f"http://127.0.0.1:{ports[name]}/metrics"
        assert url in banner
        text = httpx.get(url, timeout=10).text
        assert 'nilecare_payments_completed_total{provider="zain_cash",status="confirmed"}' in text
    beats = tmp_path / "var" / "heartbeats"
    for name in ("payment-worker", "reconciliation-worker"):
        assert fresh(beats / f"{name}.heartbeat", 30), name

    children = _children(process.pid)
    assert len(children) == 5  # simulator, gateway, two workers, exporter
    process.send_signal(signal.SIGTERM)
    assert process.wait(40) == 0
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()]
