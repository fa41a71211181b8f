"""The metrics exporter on real MariaDB: valid exposition, business values, DB outage."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text

from service import metrics as m
from service.clock import utcnow
from service.db.engine import make_engine
from service.db.migrate import prepare
from service.services.context import Context
from service.settings import load
from service.workers import exposition
from service.workers.exporter import Exporter
from tests import servers
from tests.conftest import base_environ
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
    exporter = Exporter(ctx.engine, ctx.settings.zone, CollectorRegistry())
    try:
        return exporter.scrape().decode()
    finally:
        exporter.close()


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
    exporter = Exporter(engine, None)
    try:
        with exposition.serving(exporter.registry, "127.0.0.1", 0, "exporter") as port:
            yield f"http://127.0.0.1:{port}"
    finally:
        exporter.close()


def test_with_the_database_down_the_exporter_answers_with_up_zero(down_exporter: str) -> None:
    assert httpx.get(f"{down_exporter}/health").json() == {"status": "ok"}
    started = time.monotonic()
    reply = httpx.get(f"{down_exporter}/metrics", timeout=10)
    assert reply.status_code == 200 and time.monotonic() - started < 5
    found = samples(reply.text)
    assert found[("nilecare_database_up", ())] == 0
    assert not any(name == "nilecare_pending_verifications" for name, _ in found)
    assert httpx.get(f"{down_exporter}/nope").status_code == 404


def test_provider_health_counts_what_the_provider_failed_to_do(
        ctx: Context, control: Callable[..., None]) -> None:
    # Declines are a healthy provider saying no: they count as answered.
    control("zain_cash", mode="declining", decline_rate=1.0)
    create_payments(ctx, 3)
    # Two unanswered calls in a row are not yet an outage; the third is.
    control("mtn_money", mode="down")
    create_payments(ctx, 2, provider="mtn_money")
    exporter = Exporter(ctx.engine, ctx.settings.zone, CollectorRegistry())
    found = samples(exporter.scrape().decode())
    zain, mtn = (("provider", "zain_cash"),), (("provider", "mtn_money"),)
    assert found[("nilecare_provider_success_ratio", (*zain, ("window", "5m")))] == 1
    assert found[("nilecare_provider_up", zain)] == 1
    assert found[("nilecare_provider_success_ratio", (*mtn, ("window", "5m")))] == 0
    assert found[("nilecare_provider_up", mtn)] == 1
    create_payments(ctx, 1, provider="mtn_money")
    found = samples(exporter.scrape().decode())
    assert found[("nilecare_provider_up", mtn)] == 0
    # One answer after the outage brings it back up at once.
    control("mtn_money", mode="healthy")
    create_payments(ctx, 1, provider="mtn_money")
    assert samples(exporter.scrape().decode())[("nilecare_provider_up", mtn)] == 1
    # Every provider and status is a series, zero where there is nothing to count.
    assert found[("nilecare_payments", (("provider", "cheque"), ("status", "failed")))] == 0
    assert found[("nilecare_revenue_today", (("currency", "USD"), ("provider", "cash")))] == 0


def test_a_hung_database_reads_as_down_within_the_timeout(tmp_path: Path) -> None:
    """SIGSTOP keeps the server's sockets open and answers nothing: the way a database hangs.
    Every scrape still answers within the timeout, with database_up 0, and the first scrape
    after SIGCONT reads the database again."""
    with servers.mariadb(tmp_path / "own") as url:
        engine = create_engine(f"{url}/mysql")
        with engine.begin() as connection:
            connection.execute(text("CREATE DATABASE hung"))
        engine.dispose()
        migrated = create_engine(f"{url}/hung")
        prepare(migrated)
        migrated.dispose()
        settings = load(base_environ(DATABASE_URL=f"{url}/hung"))
        timeout = 1.5
        engine = make_engine(settings, timeout=timeout)
        exporter = Exporter(engine, settings.zone, CollectorRegistry(), timeout=timeout)
        assert samples(exporter.scrape().decode())[("nilecare_database_up", ())] == 1
        pid = int((tmp_path / "own" / "mysqld.pid").read_text())
        os.kill(pid, signal.SIGSTOP)
        try:
            for _ in range(3):
                started = time.monotonic()
                found = samples(exporter.scrape().decode())
                assert time.monotonic() - started < timeout + 1
                assert found[("nilecare_database_up", ())] == 0
                assert ("nilecare_pending_verifications", (("provider", "visa"),)) not in found
        finally:
            os.kill(pid, signal.SIGCONT)
        deadline = time.monotonic() + 20
        while samples(exporter.scrape().decode())[("nilecare_database_up", ())] != 1:
            assert time.monotonic() < deadline, "the exporter did not recover after SIGCONT"
            time.sleep(0.5)
        exporter.close()
        engine.dispose()


def test_a_database_that_answers_slowly_is_not_down(ctx: Context) -> None:
    """The probe answers, the business read takes longer than the timeout: database_up stays
    1 and the scrape shows the last complete reading, never a page for a slow read."""
    def slow_now() -> datetime:
        time.sleep(1.5)
        return utcnow()

    exporter = Exporter(ctx.engine, ctx.settings.zone, CollectorRegistry(), timeout=0.5,
                        now=slow_now)
    try:
        first = samples(exporter.scrape().decode())
        assert first[("nilecare_database_up", ())] == 1
        assert ("nilecare_pending_verifications", (("provider", "visa"),)) not in first
        time.sleep(1.5)  # the read in flight completes
        exporter.scrape()  # starts the next read, shows the one that completed
        later = samples(exporter.scrape().decode())
        assert later[("nilecare_database_up", ())] == 1
        assert later[("nilecare_pending_verifications", (("provider", "visa"),))] == 0
    finally:
        exporter.close()
