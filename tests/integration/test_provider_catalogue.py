"""A provider added to the catalogue alone reaches everything derived from it: settings and
their credentials, env.example, the deployment's secrets and environment, the simulator, the
API's provider list, and a payment taken end to end on the embedded default."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient
from sqlalchemy import create_engine

from infra import envexample, topology
from service.api.app import create_app
from service.db import migrate
from service.domain import catalog
from service.domain.catalog import Credentials, ProviderSpec, ProviderType, Verification
from service.domain.money import FeeSchedule
from service.settings import load, settings_class
from tests.conftest import base_environ
from tests.integration.test_api import auth, body
from tests.simulator import running_simulator

ROOT = Path(__file__).resolve().parents[2]
CASHI = ProviderSpec(
    "cashi", "Cashi Wallet", ProviderType.MOBILE_WALLET, ("SDG",),
    FeeSchedule(Decimal("1.0"), Decimal("0"), Decimal("0"), None), Decimal("1.00"),
    Decimal("500000.00"), Verification.AUTOMATIC, Credentials("cashi", "Cashi Wallet"))


@pytest.fixture
def thirteenth(monkeypatch: pytest.MonkeyPatch) -> ProviderSpec:
    """One entry in the catalogue; nothing else is touched."""
    monkeypatch.setattr(catalog, "PROVIDERS", (*catalog.PROVIDERS, CASHI))
    monkeypatch.setitem(catalog.BY_CODE, CASHI.code, CASHI)
    return CASHI


def test_settings_and_env_example_carry_its_credentials(thirteenth: ProviderSpec) -> None:
    cls = settings_class()
    names = {"CASHI_API_KEY", "CASHI_API_SECRET", "CASHI_MERCHANT_ID", "CASHI_API_URL"}
    assert names <= cls.env_names()
    settings = load(base_environ(PROVIDER_SIMULATOR_URL="http://127.0.0.1:9"), cls=cls)
    found = settings.credentials("cashi")
    assert found is not None and found.api_url == "http://127.0.0.1:9/cashi"
    assert found.api_key == "key-cashi"  # tests' own environment derives from the catalogue too
    # env.example, rendered again, lists exactly what the settings read, the new ones included.
    rendered = envexample.render((ROOT / "env.example").read_text())
    listed = {line.split("=", 1)[0] for line in rendered.splitlines()
              if re.match(r"^[A-Z][A-Z0-9_]*=", line)}
    assert listed == cls.env_names()
    assert "# Cashi Wallet (cashi)" in rendered
    # The committed file does not list it: render-check would fail until it is rendered.
    assert "CASHI_API_KEY" not in (ROOT / "env.example").read_text()


def test_the_deployment_carries_its_secrets_and_merchant_id(thirteenth: ProviderSpec) -> None:
    model = topology.build()
    assert {"cashi_api_key", "cashi_api_secret"} <= {s.name for s in model.secrets}
    gateway = next(s for s in model.services if s.name == "payment-gateway-service")
    assert gateway.environment["CASHI_MERCHANT_ID"] == "nilecare-cashi"
    assert {"cashi_api_key", "cashi_api_secret"} <= {m.secret for m in gateway.secrets}
    assert "CASHI_API_KEY" not in gateway.environment  # secrets travel as files only


def test_a_payment_is_taken_through_the_simulator_and_listed(
        thirteenth: ProviderSpec, tmp_path: Path) -> None:
    cls = settings_class()
    sim_settings = load(base_environ(DATA_DIR=str(tmp_path / "sim")), cls=cls)
    with running_simulator(sim_settings) as sim:
        assert "cashi" in httpx.get(f"{sim}/_control").json()
        httpx.put(f"{sim}/_control/cashi", json={"settle_after_seconds": 0}).raise_for_status()
        settings = load(base_environ(DATA_DIR=str(tmp_path / "data"),
                                     PROVIDER_SIMULATOR_URL=sim), cls=cls)
        settings.data_dir.mkdir(parents=True)
        engine = create_engine(settings.sqlalchemy_url())
        migrate.prepare(engine)  # seeds payment_providers from the catalogue
        engine.dispose()
        with TestClient(create_app(settings)) as client:
            listed = client.get("/api/v1/payment-providers").json()["providers"]
            cashi: dict[str, Any] = next(p for p in listed if p["name"] == "cashi")
            assert cashi["active"] and cashi["type"] == "mobile_wallet"
            created = client.post("/api/v1/payments", json=body("cashi"), headers=auth())
            assert created.status_code == 201, created.text
            assert created.json()["status"] == "confirmed"
        calls = httpx.get(f"{sim}/_calls").json()
        assert any(c["provider"] == "cashi" for c in calls)
