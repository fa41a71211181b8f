"""The CLI as an operator meets it: bad configuration, tokens, migrations, OpenAPI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import jwt
from litestar.testing import TestClient

from service.api.app import create_app
from service.settings import load
from tests.conftest import TEST_JWT_SECRET, base_environ
from tests.servers import free_port


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "service.cli", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60, check=False)


def test_bad_configuration_stops_start_up_naming_the_variable(tmp_path: Path) -> None:
    env = base_environ(DATA_DIR=str(tmp_path), GATEWAY_PORT="port", JWT_SECRET="short")
    result = _cli("serve", env=env)
    assert result.returncode == 2
    assert "GATEWAY_PORT" in result.stderr and "JWT_SECRET" in result.stderr
    assert "short" not in result.stderr  # secrets are never echoed
    assert "Traceback" not in result.stderr


def test_token_is_a_valid_jwt_with_the_claims(tmp_path: Path) -> None:
    result = _cli("token", "--role", "accountant", "--role", "billing_staff", "--facility",
                  "fac-7", env=base_environ(DATA_DIR=str(tmp_path)))
    claims = jwt.decode(result.stdout.strip(), TEST_JWT_SECRET, algorithms=["HS256"])
    assert claims["roles"] == ["accountant", "billing_staff"] and claims["facility_id"] == "fac-7"


def test_migrate_then_ready_on_the_embedded_default(tmp_path: Path) -> None:
    env = base_environ(DATA_DIR=str(tmp_path))
    assert _cli("migrate", env=env).returncode == 0
    assert _cli("migrate", env=env).returncode == 0  # a second run changes nothing
    with TestClient(create_app(load(env))) as client:
        assert client.get("/health/ready").status_code == 200
        schema = client.get("/schema/openapi.json").json()
    assert "/api/v1/payments" in schema["paths"]
    assert "Idempotency-Key" in str(schema["paths"]["/api/v1/payments"]["post"])


def test_a_gateway_logs_one_stream_of_whole_json_lines(tmp_path: Path) -> None:
    """uvicorn's start-up and shutdown, alembic's readiness reads and the service's own events
    all come out as JSON lines of one shape: a log shipper parses every line."""
    env = base_environ(DATA_DIR=str(tmp_path), LOG_LEVEL="INFO")
    assert _cli("migrate", env=env).returncode == 0
    port = free_port()
    log = tmp_path / "gateway.log"
    with log.open("wb") as out:
        gateway = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--port", str(port)],
            env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while not _ready(f"http://127.0.0.1:{port}/health/ready"):
                assert gateway.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            httpx.get(f"http://127.0.0.1:{port}/api/v1/payments/pay_missing")  # a 401, logged
        finally:
            gateway.send_signal(signal.SIGTERM)
            gateway.wait(timeout=30)
    lines = log.read_text().splitlines()
    events = [json.loads(line) for line in lines]  # fails on any line that is not whole JSON
    assert all({"event", "level", "timestamp", "logger"} <= e.keys() for e in events), lines
    loggers = {e["logger"] for e in events}
    assert {"uvicorn.error"} <= loggers, loggers
    assert any("Application startup complete" in e["event"] for e in events), lines
    assert any("Finished server process" in e["event"] for e in events), lines
    assert "uvicorn.access" not in loggers  # a line per request is the metrics' job


def _ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
