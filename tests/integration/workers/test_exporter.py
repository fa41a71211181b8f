"""The metrics exporter on real MariaDB: valid exposition, business values, DB outage."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine

from service import metrics as m
from service.services.context import Context
from service.workers.exporter import Exporter, serve
from tests.integration.workers.conftest import create_payments
from tests.servers import free_port


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.fixture
def exporter_text(ctx: Context, control: Callable[..., None]) -> str:
    control("zain_cash", settle_after_seconds=0, send_webhooks=False)
    create_payments(ctx, 3, amount="200.00")  # settled at once: revenue today
    control("mtn_money", settle_after_seconds=30, send_webhooks=False)
    create_payments(ctx, 2, provider="mtn_money")  # still processing: pending verification
    return Exporter(ctx.engine, ctx.settings.zone, CollectorRegistry()).scrape().decode()


def test_every_exporter_metric_is_exposed_with_values_from_the_database(
        exporter_text: str) -> None:
    found = samples(exporter_text)
    names = {name for name, _ in found}
    exporter_specs = [spec for spec in m.ALL if spec.process == "exporter"]
    assert {spec.name for spec in exporter_specs} <= names
    assert found[("nilecare_database_up", ())] == 1
    assert found[("nilecare_pending_verifications", (("provider", "mtn_money"),))] == 2
    assert found[("nilecare_revenue_today",
                  (("currency", "SDG"), ("provider", "zain_cash")))] == 600
    assert found[("nilecare_fees_today",
                  (("currency", "SDG"), ("provider", "zain_cash")))] == float(Decimal("6.00"))
    assert found[("nilecare_provider_transactions",
                  (("provider", "zain_cash"), ("window", "5m")))] == 3
    assert found[("nilecare_provider_calls",
                  (("provider", "zain_cash"), ("window", "5m")))] == 3  # one initiate each
    assert found[("nilecare_provider_success_ratio",
                  (("provider", "zain_cash"), ("window", "1h")))] == 1
    assert found[("nilecare_provider_up", (("provider", "zain_cash"),))] == 1
    assert found[("nilecare_reconciliation_unresolved_issues", (("type", "amount"),))] == 0
    assert found[("nilecare_pending_verification_oldest_age_seconds", ())] >= 0


def test_the_exposition_passes_promtool(exporter_text: str) -> None:
    # A missing tool fails the test rather than skipping it: make test promises this check.
    assert shutil.which("promtool"), "promtool is missing: apt-get install -y prometheus"
    result = subprocess.run(["promtool", "check", "metrics"], input=exporter_text.encode(),
                            capture_output=True, check=False)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


@pytest.fixture
def down_exporter() -> Iterator[str]:
    # A port where nothing listens: the database is down from the first scrape.
    engine = create_engine(f"mysql+pymysql://root@127.0.0.1:{free_port()}/nc",
                           connect_args={"connect_timeout": 2})
    server = serve(Exporter(engine, None), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_with_the_database_down_the_exporter_answers_with_up_zero(down_exporter: str) -> None:
    assert httpx.get(f"{down_exporter}/health").json() == {"status": "ok"}
    started = time.monotonic()
    reply = httpx.get(f"{down_exporter}/metrics", timeout=10)
    assert reply.status_code == 200 and time.monotonic() - started < 5
    found = samples(reply.text)
    assert found[("nilecare_database_up", ())] == 0
    assert not any(name == "nilecare_pending_verifications" for name, _ in found)
    assert httpx.get(f"{down_exporter}/nope").status_code == 404
