"""Every payment event reaches Prometheus: after real traffic in which the gateway (replies,
webhooks, finance) and the payment worker (polls) settle payments, the counters a real
Prometheus scraped from both processes say exactly what the database says."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest
import yaml
from sqlalchemy import create_engine, text

from infra.monitoring.prometheus_config import jobs, transport
from service import tls
from service.metrics import COMPLETED_STATUSES
from service.settings import Settings
from tests.drill import system as drill_system
from tests.drill.traffic import payment
from tests.servers import free_port

COMPLETED = "|".join(s.value for s in COMPLETED_STATUSES)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[drill_system.System, str]]:
    """The product's processes on MariaDB, and a Prometheus scraping them every second."""
    prometheus = shutil.which("prometheus")
    assert prometheus, "prometheus is missing: apt-get install -y prometheus"
    workdir = tmp_path_factory.mktemp("counters")
    with drill_system.running(workdir / "system") as system:
        system.add_targets(workdir / "targets", "127.0.0.1:9")  # no Alertmanager needed
        # The deployment model's jobs, the gateway's over HTTPS against the system's CA.
        model = {job.name: job for job in jobs()}
        configs = []
        for job in system.scrape_ports:
            configs.append({"job_name": job, "file_sd_configs": [
                {"files": [str(workdir / "targets" / f"{job}.yml")]}],
                **transport(model[job], str(system.tls_files[tls.CA_SECRET].parent))})
        (workdir / "prometheus.yml").write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": configs}))
        address = f"127.0.0.1:{free_port()}"
        log = (workdir / "prometheus.log").open("wb")
        proc = subprocess.Popen([prometheus, f"--config.file={workdir / 'prometheus.yml'}",
                                 f"--storage.tsdb.path={workdir / 'data'}",
                                 f"--web.listen-address={address}"], stdout=log,
                                stderr=subprocess.STDOUT)
        try:
            yield system, f"http://{address}"
        finally:
            proc.terminate()
            proc.wait(10)


def _query(url: str, expr: str) -> dict[tuple[str, ...], float]:
    result = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10).json()
    return {tuple(r["metric"].values()): float(r["value"][1]) for r in result["data"]["result"]}


def _database(system: drill_system.System, sql: str) -> dict[tuple[str, ...], float]:
    engine = create_engine(system.database_url)
    try:
        with engine.connect() as connection:
            return {tuple(row[:-1]): float(row[-1]) for row in connection.execute(text(sql))}
    finally:
        engine.dispose()


def _control(system: drill_system.System, provider: str, **values: object) -> None:
    httpx.put(f"{system.simulator}/_control/{provider}", json=values, timeout=10
              ).raise_for_status()


def _wait(what: str, seconds: float, check: object) -> None:
    deadline = time.monotonic() + seconds
    while not (callable(check) and check()):
        assert time.monotonic() < deadline, f"timed out after {seconds:.0f} s waiting for {what}"
        time.sleep(1)


def test_scraped_counters_match_the_database_by_provider_and_status(
        running: tuple[drill_system.System, str]) -> None:
    system, prometheus = running
    # zain_cash and mtn_money are settled by the worker's polls (no webhooks, mtn down at
    # first, so its payments are unknown until the worker asks again); visa is declined at
    # once; sudani_cash settles by webhook; cash is verified or cancelled by finance.
    _control(system, "zain_cash", send_webhooks=False, settle_after_seconds=1.0)
    _control(system, "mtn_money", mode="down")
    _control(system, "visa", mode="declining", decline_rate=1.0)
    token = {"Authorization": f"Bearer {system.token('counters', ('accountant',))}"}
    with httpx.Client(base_url=system.gateway, headers=token, timeout=30,
                      verify=system.trust) as client:
        created = {}
        for provider, count in (("zain_cash", 6), ("mtn_money", 4), ("visa", 5),
                                ("sudani_cash", 5), ("cash", 4)):
            created[provider] = [client.post("/api/v1/payments", json=payment(provider))
                                 .json()["id"] for _ in range(count)]
        _control(system, "mtn_money", mode="healthy")
        for index, payment_id in enumerate(created["cash"]):
            action = (f"/api/v1/payments/{payment_id}/verify" if index % 2 else
                      f"/api/v1/payments/{payment_id}/cancel")
            body = {"approve": True} if index % 2 else None
            assert client.post(action, json=body).status_code == 200
        # The worker asks about open payments from 30 s after they were created.
        _wait("every payment to settle", 180, lambda: not _database(
            system, "SELECT status, COUNT(*) FROM payments WHERE status IN "
                    "('pending', 'processing', 'unknown', 'awaiting_verification') "
                    "GROUP BY status"))
    database = _database(system, "SELECT provider_code, status, COUNT(*) FROM payments "
                                 "GROUP BY provider_code, status")
    assert {status for _, status in database} >= {"confirmed", "rejected", "failed", "verified",
                                                  "cancelled"}

    def scraped() -> dict[tuple[str, ...], float]:
        return _query(prometheus, "sum by (provider, status) "
                                  f'(nilecare_payments_completed_total{{status=~"{COMPLETED}"}})'
                                  " > 0")

    _wait("Prometheus to scrape the last changes", 30, lambda: scraped() == database)
    created_db = _database(system, "SELECT provider_code, COUNT(*) FROM payments GROUP BY 1")
    assert _query(prometheus, "sum by (provider) (nilecare_payments_created_total) > 0") == \
        created_db
    # Both processes counted: the worker's share is what used to be invisible.
    by_job = _query(prometheus, "sum by (job) (nilecare_payments_completed_total)")
    assert by_job[("payment-worker",)] >= 6 + 4  # zain_cash and mtn_money, settled by polls
    assert by_job[("payment-gateway",)] >= 5 + 5 + 4


def test_the_workers_serve_their_metrics_where_the_deployment_model_says(
        running: tuple[drill_system.System, str]) -> None:
    from infra import topology

    system, _ = running
    model = topology.build()
    defaults = {"payment-worker": Settings.model_fields["worker_metrics_port"].default,
                "payment-reconciliation-worker":
                    Settings.model_fields["reconciliation_metrics_port"].default}
    for service, default in defaults.items():
        metrics = model.service(service).metrics
        # The port the model publishes to Prometheus is the one the process listens on.
        assert metrics is not None and metrics.port == default
        port = system.scrape_ports[metrics.job]
        reply = httpx.get(f"http://127.0.0.1:{port}{metrics.path}", timeout=10)
        assert reply.status_code == 200
        assert "nilecare_payments_completed_total" in reply.text
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).json() == {"status": "ok"}

