"""The payment API on real MariaDB and Redis, with the provider simulator."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient
from sqlalchemy import create_engine, func, select, text

from service.api.app import create_app
from service.api.auth import mint
from service.db import migrate
from service.db.models import Payment, PaymentAttempt
from service.domain.catalog import PROVIDERS
from service.domain.status import PaymentStatus
from service.providers import signing
from service.providers.contract import ProviderReply
from service.settings import Settings
from tests.conftest import TEST_JWT_SECRET, TEST_WEBHOOK_SECRET, random_key
from tests.servers import free_port
from tests.simulator import running_simulator


@pytest.fixture
def stack(
    settings_factory: Callable[..., Settings], mysql_url: str, redis_url: str
) -> Iterator[tuple[TestClient[Any], str, Settings]]:
    # The simulator's callbacks go nowhere (a closed port): tests post webhooks themselves.
    sim_settings = settings_factory()
    with running_simulator(sim_settings) as sim:
        settings = settings_factory(
            database_url=mysql_url,
            redis_url=redis_url,
            provider_simulator_url=sim,
            gateway_public_url=f"http://127.0.0.1:{free_port()}",
        )
        engine = create_engine(mysql_url)
        migrate.prepare(engine)
        engine.dispose()
        with TestClient(create_app(settings)) as client:
            yield client, sim, settings


def auth(
    role: str = "accountant", facility: str | None = "fac-1", sub: str = "u1"
) -> dict[str, str]:
    return {"Authorization": "Bearer " + mint(TEST_JWT_SECRET, sub, [role], facility)}


def body(provider: str = "zain_cash", **extra: Any) -> dict[str, Any]:
    return {
        "provider": provider,
        "amount": "150.00",
        "currency": "SDG",
        "patient_id": "p-1",
        "payer_phone": "+249912345678",
        **extra,
    }


def control(sim: str, provider: str, **values: Any) -> None:
    assert httpx.put(f"{sim}/_control/{provider}", json=values).status_code == 200


def test_each_of_the_twelve_providers_takes_a_payment(stack: Any) -> None:
    client, sim, _ = stack
    for spec in PROVIDERS:
        control(sim, spec.code, settle_after_seconds=0) if spec.electronic else None
        r = client.post("/api/v1/payments", json=body(spec.code), headers=auth())
        assert r.status_code == 201, (spec.code, r.text)
        expected = "confirmed" if spec.electronic else "awaiting_verification"
        assert r.json()["status"] == expected, spec.code
        assert Decimal(r.json()["amount"]) - Decimal(r.json()["fees"]) == Decimal(
            r.json()["net_amount"]
        )
        assert r.json()["payer_phone"] == "+2499****5678"
    listed = client.get("/api/v1/payments?limit=100", headers=auth()).json()["items"]
    assert len(listed) == 12


def test_providers_listing_is_public(stack: Any) -> None:
    client, _, _ = stack
    providers = client.get("/api/v1/payment-providers").json()["providers"]
    assert len(providers) == 12 and all(p["active"] for p in providers)
    visa = next(p for p in providers if p["name"] == "visa")
    assert visa["fees"]["percent"] == "2.5" and visa["currencies"] == ["SDG", "USD"]


def test_idempotency_replay_mismatch(stack: Any) -> None:
    client, sim, _ = stack
    control(sim, "visa", settle_after_seconds=0)
    key = random_key()
    first = client.post(
        "/api/v1/payments", json=body("visa"), headers={**auth(), "Idempotency-Key": key}
    )
    again = client.post(
        "/api/v1/payments", json=body("visa"), headers={**auth(), "Idempotency-Key": key}
    )
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    other = client.post(
        "/api/v1/payments",
        json=body("visa", amount="151.00"),
        headers={**auth(), "Idempotency-Key": key},
    )
    assert other.status_code == 422 and other.json()["field"] == "Idempotency-Key"
    # The same JSON with its keys in another order and other whitespace is the same request.
    reordered = json.dumps(dict(reversed(list(body("visa").items()))), indent=2)
    replay = client.post("/api/v1/payments", content=reordered,
                         headers={**auth(), "Idempotency-Key": key,
                                  "Content-Type": "application/json"})
    assert replay.status_code == 201 and replay.json() == first.json()
    # Another caller's identical key is a different key.
    third = client.post(
        "/api/v1/payments", json=body("visa"), headers={**auth(sub="u2"), "Idempotency-Key": key}
    )
    assert third.json()["id"] != first.json()["id"]


def test_provider_timeout_leaves_unknown_and_blocks_a_second_charge(stack: Any) -> None:
    client, sim, _ = stack
    control(sim, "mtn_money", mode="slow", latency_ms=3000)  # provider timeout is 2 s
    r = client.post("/api/v1/payments", json=body("mtn_money", invoice_id="INV-9"), headers=auth())
    assert r.status_code == 201 and r.json()["status"] == "unknown"
    assert r.json()["failure_reason"]  # the timeout, kept while the outcome is open
    control(sim, "mtn_money", mode="healthy", latency_ms=0)
    again = client.post(
        "/api/v1/payments", json=body("mtn_money", invoice_id="INV-9"), headers=auth()
    )
    assert again.status_code == 409 and again.json()["field"] == "invoice_id"
    # The provider confirms it later: a confirmed payment says nothing of the timeout.
    services = client.app.state["services"]
    with services.ctx.sessions() as session:
        payment_id = session.scalars(select(Payment.id).where(
            Payment.public_id == r.json()["id"])).one()
    reply = ProviderReply(PaymentStatus.CONFIRMED, "sim-1", Decimal("150.00"), "SDG", 200)
    assert services.payments.transitions.apply_reply(payment_id, reply, "worker")
    confirmed = client.get(f"/api/v1/payments/{r.json()['id']}", headers=auth()).json()
    assert confirmed["status"] == "confirmed" and confirmed["failure_reason"] is None


def test_provider_down_is_unknown_not_failed(stack: Any) -> None:
    client, sim, _ = stack
    control(sim, "bankak", mode="down")
    r = client.post("/api/v1/payments", json=body("bankak"), headers=auth())
    assert r.json()["status"] == "unknown"


def test_amount_mismatch_is_an_integrity_error(stack: Any) -> None:
    client, sim, _ = stack
    control(sim, "visa", tamper_amount=True, settle_after_seconds=0)
    r = client.post("/api/v1/payments", json=body("visa"), headers=auth())
    assert r.status_code == 502 and r.json()["payment"]["status"] == "unknown"


def _signed(event: dict[str, Any], at: int | None = None) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(event).encode()
    ts = int(time.time()) if at is None else at
    return raw, {
        signing.HEADER: signing.sign(TEST_WEBHOOK_SECRET, raw, ts),
        "Content-Type": "application/json",
    }


def test_webhooks_verify_dedupe_and_ask_the_provider(stack: Any) -> None:
    client, sim, _settings = stack
    control(sim, "zain_cash", settle_after_seconds=0.5)
    created = client.post("/api/v1/payments", json=body(), headers=auth()).json()
    assert created["status"] == "processing"
    # A signed event claiming success before the provider settled changes nothing.
    raw, headers = _signed(
        {
            "id": "evt-1",
            "type": "payment.succeeded",
            "data": {"reference": created["reference"], "status": "succeeded"},
        }
    )
    assert (
        client.post("/api/v1/webhooks/zain_cash", content=raw, headers=headers).status_code == 200
    )
    assert (
        client.get(f"/api/v1/payments/{created['id']}", headers=auth()).json()["status"]
        == "processing"
    )
    time.sleep(0.6)
    raw, headers = _signed(
        {"id": "evt-2", "type": "payment.succeeded", "data": {"reference": created["reference"]}}
    )
    assert (
        client.post("/api/v1/webhooks/zain_cash", content=raw, headers=headers).json()["duplicate"]
        is False
    )
    assert (
        client.get(f"/api/v1/payments/{created['id']}", headers=auth()).json()["status"]
        == "confirmed"
    )
    again = client.post("/api/v1/webhooks/zain_cash", content=raw, headers=headers)
    assert again.json()["duplicate"] is True
    # An out-of-order "failed" event cannot move a confirmed payment back.
    raw, headers = _signed(
        {
            "id": "evt-3",
            "type": "payment.failed",
            "data": {"reference": created["reference"], "status": "failed"},
        }
    )
    client.post("/api/v1/webhooks/zain_cash", content=raw, headers=headers)
    assert (
        client.get(f"/api/v1/payments/{created['id']}", headers=auth()).json()["status"]
        == "confirmed"
    )


@pytest.mark.parametrize("skew", [-301, 301])
def test_webhook_signatures_outside_tolerance_are_refused(stack: Any, skew: int) -> None:
    client, _, _ = stack
    raw, headers = _signed(
        {"id": "e", "type": "t", "data": {"reference": "x"}}, at=int(time.time()) + skew
    )
    r = client.post("/api/v1/webhooks/zain_cash", content=raw, headers=headers)
    assert r.status_code == 401 and "tolerance" in r.json()["detail"]
    tampered = client.post(
        "/api/v1/webhooks/zain_cash",
        content=raw + b" ",
        headers=_signed({"id": "e", "type": "t", "data": {"reference": "x"}})[1],
    )
    assert tampered.status_code == 401


def test_manual_verification_and_refunds(stack: Any) -> None:
    client, sim, _settings = stack
    cash = client.post(
        "/api/v1/payments", json=body("cash", amount="100.00"), headers=auth("cashier")
    ).json()
    assert (
        client.post(
            f"/api/v1/payments/{cash['id']}/verify", json={}, headers=auth("cashier")
        ).status_code
        == 403
    )
    verified = client.post(
        f"/api/v1/payments/{cash['id']}/verify", json={"note": "counted"}, headers=auth()
    )
    assert verified.json()["status"] == "verified"
    part = client.post(
        f"/api/v1/payments/{cash['id']}/refunds", json={"amount": "40.00"}, headers=auth()
    )
    assert part.status_code == 201 and part.json()["payment"]["status"] == "partially_refunded"
    too_much = client.post(
        f"/api/v1/payments/{cash['id']}/refunds", json={"amount": "60.01"}, headers=auth()
    )
    assert too_much.status_code == 409 and too_much.json()["field"] == "amount"
    rest = client.post(f"/api/v1/payments/{cash['id']}/refunds", json={}, headers=auth())
    assert rest.json()["amount"] == "60.00" and rest.json()["payment"]["status"] == "refunded"
    control(sim, "visa", settle_after_seconds=0)
    card = client.post("/api/v1/payments", json=body("visa", amount="80.00"), headers=auth()).json()
    refund = client.post(
        f"/api/v1/payments/{card['id']}/refunds", json={"amount": "80.00"}, headers=auth()
    )
    assert refund.status_code == 201 and refund.json()["payment"]["status"] == "refunded"


def test_reads_are_scoped_to_the_facility(stack: Any) -> None:
    client, _, _ = stack
    mine = client.post("/api/v1/payments", json=body("cash"), headers=auth()).json()
    assert (
        client.get(f"/api/v1/payments/{mine['id']}", headers=auth(facility="fac-2")).status_code
        == 404
    )
    assert (
        client.get(f"/api/v1/payments/{mine['id']}", headers=auth("super_admin", None)).status_code
        == 200
    )
    assert client.get("/api/v1/payments", headers=auth(facility="fac-2")).json()["items"] == []
    assert (
        client.get("/api/v1/payments?facility_id=fac-1", headers=auth(facility="fac-2")).status_code
        == 403
    )


def test_health_ready_and_metrics(stack: Any) -> None:
    client, _, _ = stack
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/health/ready").json()
    assert ready["checks"] == {"database": "ok", "migrations": "ok", "redis": "ok"}
    client.post("/api/v1/payments", json=body("cash"), headers=auth())
    metrics = client.get("/metrics").text
    assert 'nilecare_payments_created_total{currency="SDG",provider="cash"} 1.0' in metrics


def test_not_ready_names_the_failed_check(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory(database_url=f"mysql+pymysql://root@127.0.0.1:{free_port()}/x")
    with TestClient(create_app(settings)) as client:
        r = client.get("/health/ready")
    assert r.status_code == 503 and r.json()["checks"]["database"].startswith("failed")


def test_rate_limit_uses_the_redis_store(
    settings_factory: Callable[..., Settings], mysql_url: str, redis_url: str
) -> None:
    settings = settings_factory(
        database_url=mysql_url, redis_url=redis_url, rate_limit_per_minute=3
    )
    engine = create_engine(mysql_url)
    migrate.prepare(engine)
    # Buckets are per token subject and the Redis store outlives this test: fresh subjects.
    subject, other = f"rate-{random_key()}", f"rate-{random_key()}"
    with TestClient(create_app(settings)) as client:
        codes = [client.get("/api/v1/payments", headers=auth(sub=subject)).status_code
                 for _ in range(3)]
        # A freshly minted token for the same subject buys no extra quota ...
        fresh = auth("billing_staff", sub=subject)
        limited = client.get("/api/v1/payments", headers=fresh)
        codes.append(limited.status_code)
        assert codes == [200, 200, 200, 429]
        assert limited.headers["content-type"].startswith("application/problem+json")
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        assert limited.json()["field"] == "Authorization"
        # ... while another caller is not held back by it.
        assert client.get("/api/v1/payments", headers=auth(sub=other)).status_code == 200
        assert client.get("/health").status_code == 200
    with engine.connect() as c:
        assert c.execute(select(func.count(Payment.id))).scalar() == 0
        assert c.execute(select(func.count(PaymentAttempt.id))).scalar() == 0
        c.execute(text("SELECT 1"))
    engine.dispose()


def test_a_pending_charge_is_scheduled_for_the_worker(stack: Any, mysql_url: str) -> None:
    client, sim, _ = stack
    control(sim, "sudani_cash", settle_after_seconds=60, send_webhooks=False)
    created = client.post("/api/v1/payments", json=body("sudani_cash"), headers=auth()).json()
    assert created["status"] == "processing" and created["provider_reference"]
    engine = create_engine(mysql_url)
    with engine.connect() as c:
        due = c.execute(
            select(Payment.next_check_at).where(Payment.public_id == created["id"])
        ).scalar_one()
    engine.dispose()
    assert due is not None


@pytest.mark.parametrize(("values", "message"), [
    ({"error_rate": "x"}, "error_rate must be a float"),
    ({"decline_rate": 1.5}, "decline_rate must be between 0 and 1"),
    ({"latency_ms": -1}, "latency_ms must not be negative"),
    ({"send_webhooks": 1}, "send_webhooks must be a bool"),
    ({"mode": "sleepy"}, "mode must be one of healthy, slow, declining, down, flaky"),
    ({"colour": "red"}, "unknown control fields"),
])
def test_the_simulator_refuses_controls_that_would_break_its_calls(
        stack: Any, values: dict[str, Any], message: str) -> None:
    client, sim, _ = stack
    reply = httpx.put(f"{sim}/_control/zain_cash", json=values)
    assert reply.status_code == 400 and message in reply.text
    # The provider still answers afterwards.
    assert client.post("/api/v1/payments", json=body(), headers=auth()).status_code == 201


def test_a_keyed_create_refused_for_its_invoice_leaves_nothing_and_frees_its_key(
        stack: Any) -> None:
    """Sent together, the key, the invoice check and the payment are written before the
    check's answer is read: a refused invoice rolls all of them back, and the connection
    goes back to the pool with no transaction (a lock left on the key would make the next
    create with it wait out the lock timeout and answer 503)."""
    client, _, _ = stack
    cash = body("cash", invoice_id="INV-77")
    first = client.post("/api/v1/payments", json=cash, headers=auth())
    assert first.status_code == 201 and first.json()["status"] == "awaiting_verification"
    key = random_key()
    for _ in range(2):
        refused = client.post("/api/v1/payments", json=cash,
                              headers={**auth(), "Idempotency-Key": key})
        assert refused.status_code == 409 and refused.json()["field"] == "invoice_id"
        assert refused.json()["payment_id"] == first.json()["id"]
    services = client.app.state["services"]
    with services.ctx.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Payment)) == 1
    # The key is free at once: a request for another invoice takes it.
    other = client.post("/api/v1/payments", json=body("cash", invoice_id="INV-78"),
                        headers={**auth(), "Idempotency-Key": key})
    assert other.status_code == 201 and other.json()["invoice_id"] == "INV-78"
    again = client.post("/api/v1/payments", json=body("cash", invoice_id="INV-78"),
                        headers={**auth(), "Idempotency-Key": key})
    assert again.json()["id"] == other.json()["id"]  # replayed


@pytest.mark.parametrize(("provider", "extra", "queries"), [
    ("visa", {}, 4),  # key and payment | COMMIT; attempt, move and key's answer | COMMIT
    ("visa", {"invoice_id": "inv-rt"}, 4),  # key, invoice check and payment | COMMIT; …
    ("cash", {}, 2),  # key and payment | key's answer, COMMIT
])
def test_a_keyed_create_sends_each_transaction_in_two_round_trips(
        stack: Any, monkeypatch: pytest.MonkeyPatch, provider: str, extra: dict[str, str],
        queries: int) -> None:
    """The statements of a transaction go to MariaDB together (service/db/pipeline.py):
    counted as the queries PyMySQL sends while one create is served."""
    import pymysql.connections
    from pymysql.constants import COMMAND

    client, sim, _ = stack
    control(sim, "visa", settle_after_seconds=0)
    client.post("/api/v1/payments", json=body(provider), headers=auth())  # warm the pool
    sent: list[str] = []
    original = pymysql.connections.Connection._execute_command  # type: ignore[attr-defined]

    def counted(self: Any, command: int, sql: Any) -> Any:
        if command == COMMAND.COM_QUERY:
            sent.append(sql if isinstance(sql, str) else sql.decode(errors="replace"))
        return original(self, command, sql)

    monkeypatch.setattr(pymysql.connections.Connection, "_execute_command", counted)
    reply = client.post("/api/v1/payments", json=body(provider, **extra),
                        headers={**auth(), "Idempotency-Key": random_key()})
    monkeypatch.undo()
    assert reply.status_code == 201, reply.text
    assert len(sent) == queries, sent
    assert sent[-1].rstrip().endswith("COMMIT")
    assert sum(q.count("COMMIT") for q in sent) == (2 if provider == "visa" else 1)
