"""Every unsafe POST honours Idempotency-Key the same way: a retry replays the first answer
and changes nothing more, another body is refused, and a retry after the first request's
gateway died answers with what that request made. On real MariaDB."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import create_engine, func, insert, select
from sqlalchemy import exc as sa_exc

from service.api.app import create_app
from service.clock import utcnow
from service.db import migrate
from service.db.models import (
    IdempotencyKey,
    Payment,
    PaymentAttempt,
    PaymentAuditLog,
    PaymentReconciliation,
    PaymentRefund,
    ReconciliationRun,
)
from service.domain.caller import Caller
from service.domain.idempotency import canonical_json
from service.errors import Conflict
from service.services.context import Context
from service.services.idempotency import Attach, Idempotency, Keyed, Outcome
from service.services.payments import NewPayment
from service.services.transitions import FIRST_CHECK
from service.settings import Settings
from service.workers.verification import PaymentWorker
from tests.clock import MovableClock
from tests.conftest import random_key
from tests.integration.test_api import auth, body
from tests.simulator import running_simulator


@pytest.fixture
def gateway(settings_factory: Callable[..., Settings], mysql_url: str, tmp_path: Path,
            clock: MovableClock) -> Iterator[tuple[TestClient[Any], Context]]:
    engine = create_engine(mysql_url)
    migrate.prepare(engine)
    engine.dispose()
    with running_simulator(settings_factory()) as sim:
        settings = settings_factory(database_url=mysql_url, provider_simulator_url=sim,
                                    gateway_public_url="http://127.0.0.1:9")
        ctx = Context.build(settings, clock=clock, pipelined=True)  # as the gateway
        with TestClient(create_app(settings, ctx)) as client:
            yield client, ctx
        ctx.close()


def _lock(ctx: Context) -> timedelta:
    """Just past how long a keyed request holds its key."""
    return timedelta(seconds=ctx.settings.idempotency_lock_seconds + 1)


def _keyed(key: str) -> dict[str, str]:
    return {**auth(), "Idempotency-Key": key}


def _count(ctx: Context, table: Any, *where: Any) -> int:
    with ctx.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(table).where(*where)) or 0)


def _verified_cash(client: TestClient[Any]) -> str:
    payment = client.post("/api/v1/payments", json=body("cash"), headers=auth()).json()
    reply = client.post(f"/api/v1/payments/{payment['id']}/verify", json={"approve": True},
                        headers=auth())
    assert reply.status_code == 200
    return str(payment["id"])


def test_a_keyed_refund_is_made_once(gateway: tuple[TestClient[Any], Context]) -> None:
    client, ctx = gateway
    payment = _verified_cash(client)
    key, url = random_key(), f"/api/v1/payments/{payment}/refunds"
    first = client.post(url, json={"amount": "40.00", "reason": "overcharged"},
                        headers=_keyed(key))
    # The same body in another key order and spacing is the same request.
    again = client.post(url, content=json.dumps({"reason": "overcharged", "amount": "40.00"},
                                                indent=3),
                        headers={**_keyed(key), "Content-Type": "application/json"})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    other = client.post(url, json={"amount": "41.00", "reason": "overcharged"},
                        headers=_keyed(key))
    assert other.status_code == 422 and other.json()["field"] == "Idempotency-Key"
    assert _count(ctx, PaymentRefund) == 1
    # The same key on another payment's refund is another request: refused, not replayed.
    second_payment = _verified_cash(client)
    elsewhere = client.post(f"/api/v1/payments/{second_payment}/refunds",
                            json={"amount": "40.00", "reason": "overcharged"},
                            headers=_keyed(key))
    assert elsewhere.status_code == 422
    assert _count(ctx, PaymentRefund) == 1


def test_keyed_verify_and_cancel_answer_the_same_twice(
        gateway: tuple[TestClient[Any], Context]) -> None:
    client, ctx = gateway
    payment = client.post("/api/v1/payments", json=body("cash"), headers=auth()).json()
    key = random_key()
    url = f"/api/v1/payments/{payment['id']}/verify"
    replies = [client.post(url, json={"approve": True, "note": "counted"}, headers=_keyed(key))
               for _ in range(2)]
    assert [r.status_code for r in replies] == [200, 200]
    assert replies[0].json() == replies[1].json()
    # Without the key, a second verify is a conflict: the payment is verified already.
    assert client.post(url, json={"approve": True}, headers=auth()).status_code == 409
    assert _count(ctx, PaymentAuditLog, PaymentAuditLog.new_value == "verified") == 1

    other = client.post("/api/v1/payments", json=body("cash"), headers=auth()).json()
    key = random_key()
    cancels = [client.post(f"/api/v1/payments/{other['id']}/cancel", headers=_keyed(key))
               for _ in range(2)]
    assert [r.status_code for r in cancels] == [200, 200]
    assert cancels[1].json()["status"] == "cancelled"
    assert _count(ctx, PaymentAuditLog, PaymentAuditLog.new_value == "cancelled") == 1


def test_keyed_resolutions_and_run_requests(gateway: tuple[TestClient[Any], Context]) -> None:
    client, ctx = gateway
    with ctx.sessions.begin() as session:
        session.execute(insert(PaymentReconciliation), [{
            "run_id": "run_k", "result": "issue", "issue_type": "missing", "status": "open",
            "facility_id": "fac-1", "created_at": utcnow()}])
    [issue] = client.get("/api/v1/reconciliation/issues", headers=auth()).json()["items"]
    key = random_key()
    url = f"/api/v1/reconciliation/issues/{issue['id']}/resolve"
    resolved = [client.post(url, json={"action": "accepted", "note": "seen"},
                            headers=_keyed(key)) for _ in range(2)]
    assert [r.status_code for r in resolved] == [200, 200]
    assert _count(ctx, PaymentAuditLog, PaymentAuditLog.entity_type == "reconciliation") == 1

    key = random_key()
    runs = [client.post("/api/v1/reconciliation/runs", headers=_keyed(key)) for _ in range(2)]
    assert [r.status_code for r in runs] == [202, 202]
    assert runs[0].json()["run_id"] == runs[1].json()["run_id"]
    # Unkeyed requests while one waits join it instead of queueing another.
    joined = client.post("/api/v1/reconciliation/runs", headers=auth())
    assert joined.json()["run_id"] == runs[0].json()["run_id"]
    assert _count(ctx, ReconciliationRun) == 1


def test_a_retry_after_the_gateway_died_answers_with_what_it_made(
        gateway: tuple[TestClient[Any], Context], clock: MovableClock) -> None:
    """The first request made the refund (and linked the key to it in that transaction),
    then its process died before answering. Once the key's lock has passed, the retry gets
    the refund, and no second one is made."""
    client, ctx = gateway
    payment = _verified_cash(client)
    key, url = random_key(), f"/api/v1/payments/{payment}/refunds"
    request = {"amount": "25.00", "reason": "duplicate charge"}
    made = client.post(url, json=request, headers=auth()).json()  # what the first one made
    keyed = Keyed.of("u1", key, "POST", url, json.dumps(request, sort_keys=True,
                                                        separators=(",", ":")))
    with ctx.sessions.begin() as session:  # the dead request's key: in flight, attached
        now = clock.now()
        session.add(IdempotencyKey(scope=keyed.scope, key=key, request_hash=keyed.fingerprint,
                                   state="in_flight", resource_id=made["id"],
                                   locked_until=now + timedelta(seconds=60), created_at=now,
                                   expires_at=now + timedelta(hours=24)))
    busy = client.post(url, json=request, headers=_keyed(key))
    assert busy.status_code == 409 and int(busy.headers["Retry-After"]) >= 1
    clock.advance(timedelta(seconds=61))  # the lock passes
    retry = client.post(url, json=request, headers=_keyed(key))
    assert retry.status_code == 201 and retry.json()["id"] == made["id"]
    assert client.post(url, json=request, headers=_keyed(key)).json() == retry.json()
    assert _count(ctx, PaymentRefund) == 1


@pytest.mark.parametrize("key", [b"", b"k" * 256, "clé".encode(), b"tab\there"])
def test_a_malformed_key_is_refused(gateway: tuple[TestClient[Any], Context], key: bytes) -> None:
    client, ctx = gateway
    reply = client.post("/api/v1/payments", json=body("cash"),
                        headers=[*((k.encode(), v.encode()) for k, v in auth().items()),
                                 (b"Idempotency-Key", key)])
    assert reply.status_code == 422 and reply.json()["field"] == "Idempotency-Key"
    assert _count(ctx, IdempotencyKey) == 0


def _idempotency(client: TestClient[Any]) -> Idempotency:
    idempotency: Idempotency = client.app.state["services"].payments.idempotency
    return idempotency


def test_a_change_whose_commit_reply_was_lost_is_not_made_twice(
        gateway: tuple[TestClient[Any], Context]) -> None:
    """The work committed (and linked the key to what it made), but the process heard back
    an error. The key is freed by what the database says, not by what the process heard:
    it stays linked, and the retry answers with what was made instead of making it again."""
    client, ctx = gateway
    idempotency = _idempotency(client)
    keyed = Keyed.of("u1", random_key(), "POST", "/api/v1/payments", "{}")
    made: list[str] = []

    def make(attach: Attach) -> Outcome:
        with ctx.sessions.begin() as session:
            attach(session, "pay_made_once")
        made.append("pay_made_once")
        raise Conflict("pretend the COMMIT's reply was lost", field=None)

    with pytest.raises(Conflict):
        idempotency.run(keyed, make, lambda resource: Outcome(201, {"id": resource}))
    again = idempotency.run(keyed, make, lambda resource: Outcome(201, {"id": resource}))
    assert again == Outcome(201, {"id": "pay_made_once"}) and made == ["pay_made_once"]


def test_a_request_the_database_failed_keeps_its_key_locked(
        gateway: tuple[TestClient[Any], Context], clock: MovableClock) -> None:
    """A database error mid-request says nothing of whether it committed: the key stays in
    flight (409 with Retry-After) until its lock passes, then the retry recovers."""
    client, ctx = gateway
    idempotency = _idempotency(client)
    keyed = Keyed.of("u1", random_key(), "POST", "/api/v1/payments", "{}")

    def lost(attach: Attach) -> Outcome:
        with ctx.sessions.begin() as session:
            attach(session, "pay_maybe")
        raise sa_exc.OperationalError("COMMIT", {}, Exception(2013, "Lost connection"))

    with pytest.raises(sa_exc.OperationalError):
        idempotency.run(keyed, lost, lambda resource: Outcome(201, {"id": resource}))
    with pytest.raises(Conflict) as busy:
        idempotency.run(keyed, lost, lambda resource: Outcome(201, {"id": resource}))
    assert busy.value.retry_after is not None and busy.value.retry_after >= 1
    clock.advance(_lock(ctx))  # the lock passes
    recovered = idempotency.run(keyed, lost, lambda resource: Outcome(201, {"id": resource}))
    assert recovered.body == {"id": "pay_maybe"}


class _Died(BaseException):
    """The process ends here: nothing after this line runs, no handler frees anything."""


def test_a_charge_whose_gateway_died_before_sending_it_is_never_taken(
        gateway: tuple[TestClient[Any], Context], clock: MovableClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The first request recorded the payment (processing, its key linked to it) and died
    before the provider call. The retry, once the lock has passed, answers with that payment
    and sends nothing; the worker's first check finds the provider never saw it."""
    client, ctx = gateway
    services = client.app.state["services"]
    request = body("visa")
    keyed = Keyed.of("u1", random_key(), "POST", "/api/v1/payments", canonical_json(request))
    adapter = ctx.providers.adapter("visa")
    assert adapter is not None

    def die(*_args: Any) -> Any:
        raise _Died

    monkeypatch.setattr(adapter, "initiate", die)
    caller = Caller("u1", frozenset({"accountant"}), "fac-1")
    new = NewPayment("visa", Decimal("150.00"), "SDG", "fac-1", "p-1",
                     payer_phone="+249912345678")
    with pytest.raises(_Died):
        services.creation.create(caller, new, keyed)
    monkeypatch.undo()
    clock.advance(_lock(ctx))  # its gateway is gone; the lock passes
    retry = client.post("/api/v1/payments", json=request,
                        headers={**auth(), "Idempotency-Key": keyed.key})
    assert retry.status_code == 201, retry.text
    assert retry.json()["status"] == "processing"
    clock.advance(FIRST_CHECK)  # the worker's first check comes due
    PaymentWorker(ctx, owner="w-test").run_once()
    after = client.get(f"/api/v1/payments/{retry.json()['id']}", headers=auth()).json()
    assert after["status"] == "failed" and after["failure_reason"] == "not found at provider"
    assert _count(ctx, PaymentAttempt, PaymentAttempt.operation == "initiate") == 0
    assert _count(ctx, Payment) == 1
