"""The least a keyed create can cost: its own statements and its provider call, and nothing
else, served like the bare app (bench/bare.py). `bench/create.py --floor` drives it.

Per request it sends the statements a keyed card create sends (read from MariaDB's general
log of one create; service/services/creation.py), in the same four round trips and on a
session set up as the gateway's (READ COMMITTED, FOUND_ROWS, its lock wait), and between
them makes the provider call, signed as the gateway's adapter signs it. It has no token, no
rate limit, no validation, no Idempotency-Key rules, no invoice check, no metrics and no
view, so no create that keeps its guarantees can be faster. `app_factory` runs it on worker
threads with PyMySQL and the adapter itself (urllib3), as the gateway runs a create;
`async_app_factory` on the event loop with asyncmy and aiohttp (dev-only dependencies).

Each request checks that it did the create's writes (the key, the payment, the attempt, the
move, the key's response), and fails otherwise; the bench counts the statements and commits
of each floor's creates beside the gateway's. An error is logged with its traceback."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp
import asyncmy
import pymysql
from litestar import Litestar, Request, get, post
from litestar.types import HTTPScope, WebSocketScope
from pymysql.constants import CLIENT
from sqlalchemy.engine import URL, make_url

from service.domain.catalog import BY_CODE
from service.domain.money import fmt
from service.domain.status import PaymentStatus
from service.providers import signing
from service.providers.contract import ChargeRequest, ProviderReply, check_integrity
from service.providers.http_adapter import Answer, HttpAdapter
from service.providers.registry import Registry
from service.sealing import Sealer
from service.settings import ProviderCredentials, Settings, load

log = logging.getLogger("bench.floor")
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


def signed_charge(code: str, credentials: ProviderCredentials,
                  charge: ChargeRequest) -> tuple[bytes, dict[str, str]]:
    """The body and headers HttpAdapter.initiate sends for `charge` (its _call's), for a
    client of another library to send (tests/unit/test_bench_floor.py holds them equal)."""
    raw = json.dumps({"merchant_id": credentials.merchant_id, "reference": charge.reference,
                      "amount": fmt(charge.amount), "currency": charge.currency,
                      "payer_phone": charge.payer_phone, "description": charge.description,
                      "callback_url": charge.callback_url, "scheme": code},
                     separators=(",", ":")).encode()
    return raw, {"Content-Type": "application/json", "X-NileCare-Key": credentials.api_key,
                 "X-Request-Id": str(uuid.uuid4()),
                 signing.HEADER: signing.sign(credentials.api_secret, raw, int(time.time()))}


@dataclass(frozen=True)
class Made:
    """What the first round trip wrote, for the rest of the create."""

    provider: str
    amount: Decimal
    fees: Decimal
    currency: str
    patient_id: str
    phone: str
    at: datetime
    public_id: str
    reference: str


def _check_intent(key_id: int | None, payment_id: int | None) -> tuple[int, int]:
    if not key_id or not payment_id:
        raise RuntimeError(f"the intent wrote key {key_id} and payment {payment_id}")
    return key_id, payment_id


def _check_reply(counts: list[int]) -> None:
    """The reply wrote the attempt, moved the payment and completed the key."""
    attempt, moved, _, completed = counts
    if (attempt, moved, completed) != (1, 1, 1):
        raise RuntimeError(f"the reply wrote {counts} rows, not one each")


class Floor:
    def __init__(self, settings: Settings) -> None:
        self.url: URL = make_url(settings.sqlalchemy_url())
        # As the gateway's sessions (service/db/engine.py): MariaDB's name for the level.
        self.session = (f"SET SESSION tx_isolation = 'READ-COMMITTED', "
                        f"innodb_lock_wait_timeout = {settings.database_lock_wait_seconds}")
        self.flags = CLIENT.MULTI_STATEMENTS | CLIENT.FOUND_ROWS
        self.registry = Registry.from_settings(settings)
        self._settings = settings
        self._sealer = Sealer(settings.encryption_key.get_secret_value())
        self._callback = f"{settings.gateway_public_url.rstrip('/')}/api/v1/webhooks/"
        self._local = threading.local()

    def credentials(self, code: str) -> ProviderCredentials:
        credentials = self._settings.credentials(code)
        if credentials is None or not credentials.api_url:
            raise RuntimeError(f"provider {code} has no API here")
        return credentials

    def intent(self, data: dict[str, Any], key: str) -> tuple[tuple[Any, ...], Made]:
        """The first round trip's values."""
        body = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
        amount = Decimal(data["amount"])
        spec = BY_CODE[data["provider"]]
        now = datetime.now(UTC).replace(tzinfo=None)
        made = Made(spec.code, amount, spec.fees.fee(amount), data["currency"],
                    data["patient_id"], data["payer_phone"], now, f"pay_{uuid.uuid4().hex}",
                    f"NC-{uuid.uuid4().hex[:20].upper()}")
        return (("caller:bench", key,
                 hashlib.sha256(b"POST /api/v1/payments " + body).hexdigest(),
                 made.public_id, now + timedelta(minutes=1), now, now + timedelta(days=1),
                 made.public_id, made.reference, made.provider, "fac-1", made.patient_id,
                 amount, made.currency, made.fees, amount - made.fees,
                 self._sealer.seal(made.phone), "bench", "bench", now, now,
                 now + timedelta(seconds=30)), made)

    def charge(self, made: Made) -> ChargeRequest:
        return ChargeRequest(made.reference, made.amount, made.currency, made.phone, None,
                             self._callback + made.provider)

    def reply(self, made: Made, reply: ProviderReply, payment_id: int,
              key_id: int) -> tuple[dict[str, Any], tuple[Any, ...]]:
        """The view, and the third round trip's values (the view is the key's response). The
        bench's provider settles at once: any other answer is an error here."""
        if reply.status is not PaymentStatus.CONFIRMED:
            raise RuntimeError(f"the provider answered {reply.status}, not confirmed")
        done = datetime.now(UTC).replace(tzinfo=None)
        view = {"id": made.public_id, "reference": made.reference, "provider": made.provider,
                "status": reply.status.value, "amount": fmt(made.amount),
                "currency": made.currency, "fees": fmt(made.fees),
                "net_amount": fmt(made.amount - made.fees), "refunded_amount": "0.00",
                "facility_id": "fac-1", "patient_id": made.patient_id, "invoice_id": None,
                "payer_phone": made.phone[:5] + "****" + made.phone[-4:], "description": None,
                "provider_reference": reply.provider_reference, "failure_reason": None,
                "created_at": made.at.isoformat() + "Z", "updated_at": done.isoformat() + "Z",
                "completed_at": done.isoformat() + "Z"}
        return view, (payment_id, made.provider, str(uuid.uuid4()), reply.status.value,
                      reply.http_status, 1, done, reply.status.value,
                      reply.provider_reference, done, done, payment_id,
                      json.dumps(view, separators=(",", ":")), key_id)

    def _connection(self) -> pymysql.connections.Connection[Any]:
        connection: pymysql.connections.Connection[Any] | None = getattr(
            self._local, "connection", None)
        if connection is None:
            url = self.url
            connection = self._local.connection = pymysql.connect(
                host=url.host, port=url.port or 3306, user=url.username,
                password=url.password or "", database=url.database, charset="utf8mb4",
                client_flag=self.flags, init_command=self.session)
        return connection

    def create(self, data: dict[str, Any], key: str) -> dict[str, Any]:
        intent, made = self.intent(data, key)
        connection = self._connection()
        with connection.cursor() as cursor:
            cursor.execute(INTENT, intent)
            key_id = cursor.lastrowid
            cursor.nextset()
            key_id, payment_id = _check_intent(key_id, cursor.lastrowid)
        connection.commit()
        adapter = self.registry.adapter(made.provider)
        if adapter is None:
            raise RuntimeError(f"no adapter for {made.provider}")
        view, values = self.reply(made, adapter.initiate(self.charge(made)), payment_id,
                                  key_id)
        with connection.cursor() as cursor:
            cursor.execute(REPLY, values)
            counts = [cursor.rowcount]
            while cursor.nextset():
                counts.append(cursor.rowcount)
        _check_reply(counts)
        connection.commit()
        return view


class LoopFloor(Floor):
    """The same create with no worker thread: asyncmy's pooled connections and aiohttp's
    client on the event loop. The provider's answer is read by the adapter's own parser."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._pool: Any = None  # asyncmy's Pool (untyped)
        self._http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        url = self.url
        self._pool = await asyncmy.create_pool(
            minsize=1, maxsize=64, host=url.host, port=url.port or 3306, user=url.username,
            password=url.password or "", database=url.database, charset="utf8mb4",
            client_flag=self.flags, init_command=self.session)
        self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))

    async def stop(self) -> None:
        self._pool.close()
        await self._pool.wait_closed()
        if self._http is not None:
            await self._http.close()

    async def _call(self, made: Made) -> ProviderReply:
        assert self._http is not None, "started"
        credentials = self.credentials(made.provider)
        adapter = self.registry.adapter(made.provider)
        if not isinstance(adapter, HttpAdapter) or credentials.api_url is None:
            raise RuntimeError(f"no HTTP adapter for {made.provider}")
        raw, headers = signed_charge(made.provider, credentials, self.charge(made))
        async with self._http.post(credentials.api_url.rstrip("/") + "/v1/payments",
                                   data=raw, headers=headers) as answer:
            content = await answer.read()
        return check_integrity(adapter._reply(Answer(answer.status, content)), made.amount,
                               made.currency)

    async def create_async(self, data: dict[str, Any], key: str) -> dict[str, Any]:
        intent, made = self.intent(data, key)
        async with self._pool.acquire() as connection:
            async with connection.cursor() as cursor:
                await cursor.execute(INTENT, intent)
                key_id = cursor.lastrowid
                await cursor.nextset()
                key_id, payment_id = _check_intent(key_id, cursor.lastrowid)
            await connection.commit()
            view, values = self.reply(made, await self._call(made), payment_id, key_id)
            async with connection.cursor() as cursor:
                await cursor.execute(REPLY, values)
                counts = [cursor.rowcount]
                while await cursor.nextset():
                    counts.append(cursor.rowcount)
            _check_reply(counts)
            await connection.commit()
        return view


def _logged(error: Exception, scope: HTTPScope | WebSocketScope) -> None:
    log.error("floor create failed on %s", scope["path"], exc_info=error)


def _health() -> Any:
    @get("/health")
    async def health() -> str:
        return "ok"

    return health


def app_factory() -> Litestar:
    floor = Floor(load())
    logging.basicConfig(level=logging.INFO)

    @post("/floor", status_code=201, sync_to_thread=True)
    def create(data: dict[str, Any], request: Request[Any, Any, Any]) -> dict[str, Any]:
        return floor.create(data, request.headers["idempotency-key"])

    return Litestar([create, _health()], openapi_config=None, after_exception=[_logged])


def async_app_factory() -> Litestar:
    floor = LoopFloor(load())
    logging.basicConfig(level=logging.INFO)

    @post("/floor", status_code=201)
    async def create(data: dict[str, Any], request: Request[Any, Any, Any]) -> dict[str, Any]:
        return await floor.create_async(data, request.headers["idempotency-key"])

    return Litestar([create, _health()], openapi_config=None, after_exception=[_logged],
                    on_startup=[floor.start], on_shutdown=[floor.stop])
