"""The CLI as an operator meets it: bad configuration, tokens, migrations, OpenAPI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jwt
from litestar.testing import TestClient

from service.api.app import create_app
from service.settings import load
from tests.conftest import TEST_JWT_SECRET, base_environ


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
