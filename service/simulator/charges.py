"""The providers' API the adapters call: charges, their status, refunds, settling webhooks."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
import structlog
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException
from litestar.params import FromPath

from service.providers import signing
from service.simulator.state import Charge, Control, SimulatorState

log = structlog.get_logger()


def _error(status: int, message: str) -> Response[dict[str, str]]:
    return Response({"error": message}, status_code=status)


async def _authenticate(
    request: Request[Any, Any, Any], state: SimulatorState, provider: str
) -> bytes:
    body = await request.body()
    credentials = state.settings.credentials(provider)
    if credentials is None:
        raise HTTPException(status_code=401, detail=f"{provider} has no credentials configured")
    if request.headers.get("x-nilecare-key") != credentials.api_key:
        raise HTTPException(status_code=401, detail="bad API key")
    try:
        signing.verify(
            credentials.api_secret, request.headers.get(signing.HEADER), body, time.time(), 300
        )
    except signing.SignatureError as exc:
        raise HTTPException(status_code=401, detail=str(exc)) from None
    return body


async def _admit(request: Request[Any, Any, Any], sim: SimulatorState,
                 provider: str) -> tuple[Control, bytes]:
    """What every provider call goes through: authentication, then the provider's mood
    (down answers 503, slow sleeps first)."""
    control = sim.control(provider)
    body = await _authenticate(request, sim, provider)
    if control.mode == "down":
        raise HTTPException(status_code=503, detail="service unavailable")
    if control.mode == "slow" or control.latency_ms:
        await asyncio.sleep(control.latency_ms / 1000)
    return control, body


def _answer(sim: SimulatorState, control: Control,
            reply: Response[dict[str, Any]]) -> Response[dict[str, Any]]:
    """The reply, or in flaky mode sometimes a 503 after the work was done."""
    if control.mode == "flaky" and sim.rng.random() < control.error_rate:
        return _error(503, "service unavailable")
    return reply


def _view(charge: Charge, control: Control) -> dict[str, Any]:
    if charge.status == "pending" and time.time() >= charge.settle_at:
        charge.status = "succeeded"
    amount = charge.amount
    if control.tamper_amount:
        amount = str(Decimal(amount) + Decimal("1.00"))
    return {
        "id": charge.id,
        "reference": charge.reference,
        "status": charge.status,
        "amount": amount,
        "currency": charge.currency,
        "decline_reason": charge.decline_reason,
    }


@post("/{provider:str}/v1/payments", status_code=201)
async def create_charge(
    provider: FromPath[str], request: Request[Any, Any, Any], sim: NamedDependency[SimulatorState]
) -> Response[dict[str, Any]]:
    started = time.time()
    control, body = await _admit(request, sim, provider)
    try:
        data = json.loads(body)
        reference = str(data["reference"])
        amount = str(Decimal(str(data["amount"])))
        currency = str(data["currency"])
    except (ValueError, KeyError, InvalidOperation):
        return _error(400, "reference, amount and currency are required")
    sim.served(provider, "initiate", reference, started)
    existing = sim.charges.get((provider, reference))
    if existing is not None:
        # Providers deduplicate by merchant reference, so a retried charge is not taken twice.
        return _answer(sim, control, Response(_view(existing, control), status_code=200))
    declined = control.mode == "declining" and sim.rng.random() < control.decline_rate
    delay = control.settle_after_seconds
    charge = Charge(
        provider,
        reference,
        f"sim_{uuid.uuid4().hex[:20]}",
        amount,
        currency,
        "declined" if declined else ("pending" if delay > 0 else "succeeded"),
        data.get("callback_url"),
        time.time() + delay,
        "insufficient funds" if declined else None,
    )
    sim.charges[(provider, reference)] = charge
    if charge.status == "pending" and control.send_webhooks and charge.callback_url:
        task = asyncio.create_task(_settle_later(sim, charge, delay))
        sim.tasks.add(task)
        task.add_done_callback(sim.tasks.discard)
    return _answer(sim, control, Response(_view(charge, control), status_code=201))


async def _settle_later(sim: NamedDependency[SimulatorState], charge: Charge, delay: float) -> None:
    await asyncio.sleep(delay)
    charge.status = "succeeded"
    event = {
        "id": f"evt_{uuid.uuid4().hex}",
        "type": "payment.succeeded",
        "created": int(time.time()),
        "data": {
            "reference": charge.reference,
            "id": charge.id,
            "status": charge.status,
            "amount": charge.amount,
            "currency": charge.currency,
        },
    }
    raw = json.dumps(event, separators=(",", ":")).encode()
    secret = sim.settings.webhook_secret.get_secret_value()
    headers = {
        "Content-Type": "application/json",
        signing.HEADER: signing.sign(secret, raw, int(time.time())),
    }
    assert charge.callback_url is not None
    for attempt in range(5):
        try:
            async with httpx.AsyncClient(timeout=5, verify=sim.webhook_trust) as client:
                reply = await client.post(charge.callback_url, content=raw, headers=headers)
            if reply.status_code < 500:
                return
            failure = f"HTTP {reply.status_code}"
        except httpx.HTTPError as exc:
            failure = f"{type(exc).__name__}: {exc}"
        log.warning("simulator.webhook_failed", url=charge.callback_url, attempt=attempt + 1,
                    reference=charge.reference, error=failure)
        await asyncio.sleep(0.5 * 2**attempt)


@get("/{provider:str}/v1/payments/{reference:str}")
async def get_charge(
    provider: FromPath[str],
    reference: FromPath[str],
    request: Request[Any, Any, Any],
    sim: NamedDependency[SimulatorState],
) -> Response[dict[str, Any]]:
    started = time.time()
    control, _body = await _admit(request, sim, provider)
    sim.served(provider, "status", reference, started)
    charge = sim.charges.get((provider, reference))
    if charge is None:
        return _error(404, "no such payment")
    return _answer(sim, control, Response(_view(charge, control)))


@post("/{provider:str}/v1/payments/{reference:str}/refunds", status_code=201)
async def refund_charge(
    provider: FromPath[str],
    reference: FromPath[str],
    request: Request[Any, Any, Any],
    sim: NamedDependency[SimulatorState],
) -> Response[dict[str, Any]]:
    started = time.time()
    control, body = await _admit(request, sim, provider)
    sim.served(provider, "refund", reference, started)
    charge = sim.charges.get((provider, reference))
    if charge is None or _view(charge, control)["status"] != "succeeded":
        return _error(409, "payment is not refundable")
    request_body = json.loads(body)
    known = charge.refunds.get(str(request_body.get("refund_reference")))
    if known is not None:
        return _answer(sim, control, Response(known, status_code=201))
    amount = Decimal(str(request_body["amount"]))
    if charge.refunded + amount > Decimal(charge.amount):
        return _error(409, "refund exceeds the payment")
    charge.refunded += amount
    reply = {"id": f"sre_{uuid.uuid4().hex[:20]}", "status": "succeeded", "amount": str(amount)}
    charge.refunds[str(request_body.get("refund_reference"))] = reply
    return _answer(sim, control, Response(reply, status_code=201))
