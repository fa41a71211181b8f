"""What no keyed create on this stack can do without: the create's own database work and its
provider call, and nothing else, served like the bare app (bench/bare.py).

`bench/create.py --floor` drives it beside the gateway and the bare echo. Per request, in a
worker thread as the gateway's create runs, it sends the statements a keyed card create
sends (read from the server's general log of one create; service/services/creation.py), in
the same four round trips on one PyMySQL connection (the key and the payment; COMMIT; the
attempt, the move and the key's stored response; COMMIT), and between them calls the
provider through the gateway's own adapter (service/providers/http_adapter.py: the signed
request over the shared urllib3 pool, the reply checked). It seals the payer's phone and
answers with the payment's fields as JSON.

`async_app_factory` serves the same create without a worker thread: the statements through
asyncmy's pool and the provider call through aiohttp, both on the event loop (the stack a
rewritten gateway could use; the gateway itself uses neither).

Both check that the reply's statements wrote one row each, so a floor that did less work
fails its requests instead of looking fast. What they leave out is all the gateway does
besides: the bearer token, the rate limit, the
body's validation, the Idempotency-Key's rules (a replay, a conflict), the invoice check,
the metrics, the error handling, the view. So their throughput is an upper bound: a create
that keeps every guarantee can only be slower. The tables, triggers and indexes are the
real ones (the same database as the gateway's)."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp
import asyncmy
import pymysql
from litestar import Litestar, Request, get, post
from pymysql.constants import CLIENT
from sqlalchemy.engine import make_url

from service.domain.money import fmt
from service.providers import signing
from service.providers.contract import ChargeRequest, ProviderReply, check_integrity
from service.providers.http_adapter import Answer, HttpAdapter
from service.providers.registry import Registry
from service.sealing import Sealer
from service.settings import load

INTENT = (
    "INSERT INTO idempotency_keys (scope, `key`, request_hash, state, resource_id, "
    "locked_until, created_at, expires_at) VALUES (%s, %s, %s, 'in_flight', %s, %s, %s, %s); "
    "INSERT INTO payments (public_id, reference, provider_code, facility_id, patient_id, "
    "invoice_id, amount, currency, total_fees, net_amount, refunded_amount, status, "
    "payer_account, description, created_by, updated_by, created_at, updated_at, "
    "next_check_at, check_attempts) VALUES (%s, %s, %s, %s, %s, NULL, %s, %s, %s, %s, 0, "
    "'processing', %s, NULL, %s, %s, %s, %s, %s, 0)")
REPLY = (
    "INSERT INTO payment_attempts (payment_id, provider_code, operation, request_id, outcome, "
    "provider_status, http_status, latency_ms, error, created_at) VALUES "
    "(%s, %s, 'initiate', %s, 'success', %s, %s, %s, NULL, %s); "
    "UPDATE payments SET status=%s, provider_reference=%s, failure_reason=NULL, "
    "updated_by='provider', updated_at=%s, completed_at=%s, next_check_at=NULL "
    "WHERE payments.id = %s AND payments.status = 'processing'; "
    "SET @nilecare_moved = ROW_COUNT(); "
    "UPDATE idempotency_keys SET state='completed', response_status=201, response_body=%s "
    "WHERE idempotency_keys.id = %s AND @nilecare_moved = 1")
FEE = Decimal("0.025")


def _check(counts: list[int]) -> None:
    """The reply's statements did the create's work: the attempt written, the payment moved,
    the key completed (else the request fails, and the bench counts an error)."""
    attempt, moved, _, completed = counts
    if (attempt, moved, completed) != (1, 1, 1):
        raise RuntimeError(f"the reply wrote {counts} rows, not one each")


class Floor:
    def __init__(self) -> None:
        settings = self._settings = load(os.environ)
        self._url = make_url(settings.sqlalchemy_url())
        self._registry = Registry.from_settings(settings)
        self._sealer = Sealer(settings.encryption_key.get_secret_value())
        self._callback = f"{settings.gateway_public_url.rstrip('/')}/api/v1/webhooks/"
        self._local = threading.local()

    def _connection(self) -> Any:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            url = self._url
            connection = self._local.connection = pymysql.connect(
                host=url.host, port=url.port or 3306, user=url.username,
                password=url.password or "", database=url.database, charset="utf8mb4",
                client_flag=CLIENT.MULTI_STATEMENTS)
        return connection

    def _intent(self, data: dict[str, Any], key: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The first round trip's values, and what the rest of the create needs."""
        body = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
        amount = Decimal(data["amount"])
        fees = (amount * FEE).quantize(Decimal("0.01"))
        now = datetime.now(UTC).replace(tzinfo=None)
        made = {"provider": data["provider"], "amount": amount, "fees": fees,
                "currency": data["currency"], "patient_id": data["patient_id"],
                "phone": data["payer_phone"], "now": now,
                "public_id": f"pay_{uuid.uuid4().hex}",
                "reference": f"NC-{uuid.uuid4().hex[:20].upper()}"}
        return (("caller:bench", key,
                 hashlib.sha256(b"POST /api/v1/payments " + body).hexdigest(),
                 made["public_id"], now + timedelta(minutes=1), now, now + timedelta(days=1),
                 made["public_id"], made["reference"], made["provider"], "fac-1",
                 made["patient_id"], amount, made["currency"], fees, amount - fees,
                 self._sealer.seal(made["phone"]), "bench", "bench", now, now,
                 now + timedelta(seconds=30)), made)

    def _charge(self, made: dict[str, Any]) -> ChargeRequest:
        return ChargeRequest(made["reference"], made["amount"], made["currency"], made["phone"],
                             None, self._callback + made["provider"])

    def _reply(self, made: dict[str, Any], reply: ProviderReply, payment_id: int,
               key_id: int) -> tuple[dict[str, Any], tuple[Any, ...]]:
        """The view, and the third round trip's values (the view is the key's response)."""
        now, done = made["now"], datetime.now(UTC).replace(tzinfo=None)
        amount, fees, phone = made["amount"], made["fees"], made["phone"]
        view = {"id": made["public_id"], "reference": made["reference"],
                "provider": made["provider"], "status": reply.status.value,
                "amount": str(amount), "currency": made["currency"], "fees": str(fees),
                "net_amount": str(amount - fees), "refunded_amount": "0.00",
                "facility_id": "fac-1", "patient_id": made["patient_id"], "invoice_id": None,
                "payer_phone": phone[:5] + "****" + phone[-4:], "description": None,
                "provider_reference": reply.provider_reference, "failure_reason": None,
                "created_at": now.isoformat() + "Z", "updated_at": done.isoformat() + "Z",
                "completed_at": done.isoformat() + "Z"}
        return view, (payment_id, made["provider"], str(uuid.uuid4()), reply.status.value,
                      reply.http_status, 1, done, reply.status.value,
                      reply.provider_reference, done, done, payment_id,
                      json.dumps(view, separators=(",", ":")), key_id)

    def create(self, data: dict[str, Any], key: str) -> dict[str, Any]:
        intent, made = self._intent(data, key)
        connection = self._connection()
        with connection.cursor() as cursor:
            cursor.execute(INTENT, intent)
            key_id = cursor.lastrowid
            cursor.nextset()
            payment_id = cursor.lastrowid
        connection.commit()
        adapter = self._registry.adapter(made["provider"])
        assert adapter is not None
        view, values = self._reply(made, adapter.initiate(self._charge(made)), payment_id,
                                   key_id)
        with connection.cursor() as cursor:
            cursor.execute(REPLY, values)
            counts = [cursor.rowcount]
            while cursor.nextset():
                counts.append(cursor.rowcount)
        _check(counts)
        connection.commit()
        return view


class AsyncFloor(Floor):
    """The same statements and provider call on the event loop: asyncmy's pooled
    connections and aiohttp's client, no worker thread."""

    def __init__(self) -> None:
        super().__init__()
        self._pool: Any = None
        self._http: Any = None
        adapter = self._registry.adapter("visa")
        credentials = self._settings.credentials("visa")
        assert isinstance(adapter, HttpAdapter) and credentials and credentials.api_url
        self._adapter, self._credentials = adapter, credentials
        self._payments_url = credentials.api_url.rstrip("/") + "/v1/payments"

    async def start(self) -> None:
        url = self._url
        self._pool = await asyncmy.create_pool(
            minsize=1, maxsize=64, host=url.host, port=url.port or 3306, user=url.username,
            password=url.password or "", database=url.database, charset="utf8mb4",
            client_flag=CLIENT.MULTI_STATEMENTS)
        self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))

    async def stop(self) -> None:
        self._pool.close()
        await self._pool.wait_closed()
        await self._http.close()

    def _signed(self, charge: ChargeRequest) -> tuple[bytes, dict[str, str]]:
        """HttpAdapter.initiate's body and _call's headers, for aiohttp to send."""
        credentials = self._credentials
        raw = json.dumps({"merchant_id": credentials.merchant_id,
                          "reference": charge.reference, "amount": fmt(charge.amount),
                          "currency": charge.currency, "payer_phone": charge.payer_phone,
                          "description": charge.description,
                          "callback_url": charge.callback_url, "scheme": "visa"},
                         separators=(",", ":")).encode()
        return raw, {"Content-Type": "application/json",
                     "X-NileCare-Key": credentials.api_key,
                     "X-Request-Id": str(uuid.uuid4()),
                     signing.HEADER: signing.sign(credentials.api_secret, raw,
                                                  int(time.time()))}

    async def create_async(self, data: dict[str, Any], key: str) -> dict[str, Any]:
        intent, made = self._intent(data, key)
        async with self._pool.acquire() as connection:
            async with connection.cursor() as cursor:
                await cursor.execute(INTENT, intent)
                key_id = cursor.lastrowid
                await cursor.nextset()
                payment_id = cursor.lastrowid
            await connection.commit()
            raw, headers = self._signed(self._charge(made))
            async with self._http.post(self._payments_url, data=raw,
                                       headers=headers) as answer:
                content = await answer.read()
                reply = check_integrity(self._adapter._reply(Answer(answer.status, content)),
                                        made["amount"], made["currency"])
            view, values = self._reply(made, reply, payment_id, key_id)
            async with connection.cursor() as cursor:
                await cursor.execute(REPLY, values)
                counts = [cursor.rowcount]
                while await cursor.nextset():
                    counts.append(cursor.rowcount)
            _check(counts)
            await connection.commit()
        return view


def app_factory() -> Litestar:
    floor = Floor()

    @post("/floor", status_code=201, sync_to_thread=True)
    def create(data: dict[str, Any], request: Request[Any, Any, Any]) -> dict[str, Any]:
        return floor.create(data, request.headers["idempotency-key"])

    @get("/health")
    async def health() -> str:
        return "ok"

    return Litestar([create, health], openapi_config=None)


def async_app_factory() -> Litestar:
    floor = AsyncFloor()

    @post("/floor", status_code=201)
    async def create(data: dict[str, Any], request: Request[Any, Any, Any]) -> dict[str, Any]:
        return await floor.create_async(data, request.headers["idempotency-key"])

    @get("/health")
    async def health() -> str:
        return "ok"

    return Litestar([create, health], openapi_config=None, on_startup=[floor.start],
                    on_shutdown=[floor.stop])
