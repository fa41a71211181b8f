"""The compose `monitoring` profile for real: Prometheus and Alertmanager from the stand-in
images, provisioned with the files rendered for the `compose-sinks` environment, scrape every
container that exposes metrics, and a database outage pages a sink container."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from infra.monitoring.prometheus_config import jobs
from tests.e2e.containers.compose_stack import COMPOSE_FILE, PROJECT, REPO, SIX, Stack, sh

pytestmark = pytest.mark.timeout(900)

PROMETHEUS = "http://127.0.0.1:9090"
MONITORING = ("alert-sink", "alertmanager", "prometheus")
OVERRIDE = "docker-compose.sinks.yml"


def _compose(stack: Stack, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return sh("docker-compose", "-f", COMPOSE_FILE.name, "-f", OVERRIDE, "-p", PROJECT,
              "--profile", "simulator", "--profile", "monitoring", *args, cwd=stack.workdir,
              env=stack.env, check=check)


@pytest.fixture(scope="module")
def monitoring(stack: Stack) -> Iterator[Stack]:
    # What an operator does: render the spec for an environment, never edit the output.
    sh(sys.executable, "-m", "infra.monitoring", "render", "--environment", "compose-sinks",
       "--output", str(stack.workdir), cwd=REPO)
    shutil.copy(Path(__file__).with_name("alert_sink.py"), stack.workdir / "alert_sink.py")
    (stack.workdir / OVERRIDE).write_text(yaml.safe_dump({"version": "3.9", "services": {
        "alert-sink": {
            "image": stack.env["NILECARE_IMAGE"], "container_name": "alert-sink",
            "command": ["python3", "/sink/alert_sink.py"],
            "volumes": ["./alert_sink.py:/sink/alert_sink.py:ro"], "networks": ["frontend"],
            # The image's own healthcheck probes the gateway's port, which the sink is not.
            "healthcheck": {"disable": True},
        }}}))
    _compose(stack, "up", "-d", *MONITORING)
    try:
        stack.wait_healthy(("prometheus", "alertmanager"), within_s=180)
        yield stack
    finally:
        _compose(stack, "rm", "-sf", *MONITORING, check=False)


def _targets() -> dict[str, str]:
    reply = httpx.get(f"{PROMETHEUS}/api/v1/targets", timeout=10).json()
    return {t["labels"]["job"]: t["health"] for t in reply["data"]["activeTargets"]}


def test_prometheus_scrapes_every_container_that_exposes_metrics(monitoring: Stack) -> None:
    expected = {job.name for job in jobs()}
    deadline = time.monotonic() + 120
    found: dict[str, str] = {}
    while time.monotonic() < deadline:
        found = _targets()
        if set(found) == expected and set(found.values()) == {"up"}:
            break
        time.sleep(3)
    assert found == dict.fromkeys(expected, "up")
    # The gateway is scraped over HTTPS, its certificate checked against the CA secret.
    active = httpx.get(f"{PROMETHEUS}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
    assert [t["scrapeUrl"].split(":")[0] for t in active
            if t["labels"]["job"] == "payment-gateway"] == ["https"]
    # The rules loaded are the generated ones, and the event counters of both workers arrive.
    rules = httpx.get(f"{PROMETHEUS}/api/v1/rules", timeout=10).json()["data"]["groups"]
    assert {g["name"] for g in rules} == {"nilecare-payments", "nilecare-slo", "nilecare-meta"}
    for job in ("payment-worker", "payment-reconciliation-worker", "payment-gateway"):
        series = httpx.get(f"{PROMETHEUS}/api/v1/query", timeout=10, params={
            "query": f'count(nilecare_payments_completed_total{{job="{job}"}})'}).json()
        assert series["data"]["result"], job


def _pages(alertname: str, action: str) -> list[dict[str, Any]]:
    logs = sh("docker", "logs", "alert-sink", quiet=True)
    found = []
    for line in logs.stdout.splitlines():
        if line.startswith("{"):
            post = json.loads(line)
            body = post["body"]
            if post["path"] == "/pagerduty" and body.get("event_action") == action \
                    and alertname in json.dumps(body):
                found.append(body)
    return found


def test_a_stopped_database_pages_the_sink_and_resolves(monitoring: Stack) -> None:
    sh("docker", "stop", "mysql-payment")
    try:
        deadline = time.monotonic() + 150
        while not _pages("PaymentDatabaseDown", "trigger"):
            assert time.monotonic() < deadline, "no PagerDuty page for the stopped database"
            time.sleep(3)
        page = _pages("PaymentDatabaseDown", "trigger")[0]
        assert page["routing_key"] == monitoring.secret("pagerduty_routing_key")
        assert "#payment-database-down" in json.dumps(page)
    finally:
        sh("docker", "start", "mysql-payment")
    monitoring.wait_healthy(SIX, within_s=180)
    deadline = time.monotonic() + 180
    while not _pages("PaymentDatabaseDown", "resolve"):
        assert time.monotonic() < deadline, "no resolve notice after the database came back"
        time.sleep(3)
