"""Every unsafe POST honours Idempotency-Key the same way: a retry replays the first answer
and changes nothing more, another body is refused, and a retry after the first request's
gateway died answers with what that request made. On real MariaDB."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import create_engine, func, insert, select, update

from service.api.app import create_app
from service.clock import utcnow
from service.db import migrate
from service.db.models import (
    IdempotencyKey,
    PaymentAuditLog,
    PaymentReconciliation,
    PaymentRefund,
    ReconciliationRun,
)
from service.services.context import Context
from service.services.idempotency import Keyed
from service.settings import Settings
from tests.conftest import random_key
from tests.integration.test_api import auth, body

pytestmark = pytest.mark.integration


@pytest.fixture
def gateway(settings_factory: Callable[..., Settings], mysql_url: str, tmp_path: Path,
            ) -> Iterator[tuple[TestClient[Any], Context]]:
    engine = create_engine(mysql_url)
    migrate.prepare(engine)
    engine.dispose()
    settings = settings_factory(database_url=mysql_url)
    ctx = Context.build(settings)
    with TestClient(create_app(settings, ctx)) as client:
        yield client, ctx
    ctx.close()


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
        gateway: tuple[TestClient[Any], Context]) -> None:
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
        now = utcnow()
        session.add(IdempotencyKey(scope=keyed.scope, key=key, request_hash=keyed.fingerprint,
                                   state="in_flight", resource_id=made["id"],
                                   locked_until=now + timedelta(seconds=60), created_at=now,
                                   expires_at=now + timedelta(hours=24)))
    busy = client.post(url, json=request, headers=_keyed(key))
    assert busy.status_code == 409 and int(busy.headers["Retry-After"]) >= 1
    with ctx.sessions.begin() as session:  # the lock passes
        session.execute(update(IdempotencyKey).where(IdempotencyKey.key == key)
                        .values(locked_until=utcnow() - timedelta(seconds=1)))
    retry = client.post(url, json=request, headers=_keyed(key))
    assert retry.status_code == 201 and retry.json()["id"] == made["id"]
    assert client.post(url, json=request, headers=_keyed(key)).json() == retry.json()
    assert _count(ctx, PaymentRefund) == 1


@pytest.mark.parametrize("key", [b"", b"k" * 256, "clé".encode(), b"tab\there"])
def test_a_malformed_key_is_refused(gateway: tuple[TestClient[Any], Context], key: bytes) -> None:
    client, ctx = gateway
    reply = client.post("/api/v1/payments", json=body("cash"),
                        headers={**auth(), "Idempotency-Key": key})  # type: ignore[dict-item]
    assert reply.status_code == 422 and reply.json()["field"] == "Idempotency-Key"
    assert _count(ctx, IdempotencyKey) == 0
