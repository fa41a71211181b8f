"""A provider simulator implementing the adapter contract for every electronic provider.

Local runs, tests and fault drills talk to it instead of the real banks and wallets. Each
provider's behaviour is set at run time through `PUT /_control/{provider}`.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import deque
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, get_args

import httpx
from litestar import Litestar, Request, Response, get, post, put
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException
from litestar.params import FromPath, JSONBody

from service.domain import catalog
from service.providers import signing
from service.settings import Settings

Mode = Literal["healthy", "slow", "declining", "down", "flaky"]
MODES: tuple[str, ...] = get_args(Mode)


@dataclass
class Control:
    mode: Mode = "healthy"
    latency_ms: int = 0
    decline_rate: float = 0.0
    # 0 settles synchronously (cards); otherwise the charge stays pending that long, then
    # succeeds and a signed webhook goes to the callback URL.
    settle_after_seconds: float = 0.0
    # Fault drill: reply about a different amount than asked (an integrity error for us).
    tamper_amount: bool = False
    send_webhooks: bool = True
    # Mode "flaky": this share of calls does its work (a charge is taken, a refund made) and
    # then answers 503, as an overloaded provider does; the rest answer normally.
    error_rate: float = 0.0


@dataclass
class Charge:
    provider: str
    reference: str
    id: str
    amount: str
    currency: str
    status: str
    callback_url: str | None
    settle_at: float
    decline_reason: str | None = None
    refunded: Decimal = field(default_factory=lambda: Decimal("0"))
    # By refund_reference: a retried refund gets the first answer, never a second refund.
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Call:
    """One call the simulator served, for tests and drills to count what reached the
    provider (charges per payment, overlapping status checks)."""

    provider: str
    operation: str
    reference: str
    started: float
    finished: float


class SimulatorState:
    def __init__(self, settings: Settings, rng: random.Random | None = None) -> None:
        self.settings = settings
        self.rng = rng or random.Random()
        self.controls: dict[str, Control] = {
            code: Control(settle_after_seconds=0.0 if spec.type == "bank_card" else 2.0)
            for code, spec in catalog.BY_CODE.items()
            if spec.electronic
        }
        self.charges: dict[tuple[str, str], Charge] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.calls: deque[Call] = deque(maxlen=100_000)  # a long dev run stays small

    def served(self, provider: str, operation: str, reference: str, started: float) -> None:
        self.calls.append(Call(provider, operation, reference, started, time.time()))

    def control(self, provider: str) -> Control:
        found = self.controls.get(provider)
        if found is None:
            raise HTTPException(status_code=404, detail=f"unknown provider {provider!r}")
        return found


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
            async with httpx.AsyncClient(timeout=5) as client:
                reply = await client.post(charge.callback_url, content=raw, headers=headers)
            if reply.status_code < 500:
                return
        except httpx.HTTPError:
            pass
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


@get("/_control")
async def list_controls(sim: NamedDependency[SimulatorState]) -> dict[str, dict[str, Any]]:
    return {code: asdict(control) for code, control in sorted(sim.controls.items())}


@put("/_control/{provider:str}")
async def set_control(
    provider: FromPath[str], data: JSONBody[dict[str, Any]], sim: NamedDependency[SimulatorState]
) -> dict[str, Any]:
    control = sim.control(provider)
    allowed = set(asdict(control))
    unknown = set(data) - allowed
    if unknown:
        raise HTTPException(status_code=400, detail=f"unknown control fields: {sorted(unknown)}")
    if "mode" in data and data["mode"] not in MODES:
        raise HTTPException(status_code=400, detail=f"mode must be one of {', '.join(MODES)}")
    current = asdict(control)
    for key, value in data.items():
        # A value of another kind than the default would break every later call.
        kind = type(current[key])
        ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            ok, value = True, float(value)
        if not ok:
            raise HTTPException(status_code=400,
                                detail=f"{key} must be a {kind.__name__}, got {value!r}")
        if key in ("decline_rate", "error_rate") and not 0 <= value <= 1:
            raise HTTPException(status_code=400, detail=f"{key} must be between 0 and 1")
        if key in ("latency_ms", "settle_after_seconds") and value < 0:
            raise HTTPException(status_code=400, detail=f"{key} must not be negative")
    for key, value in data.items():
        setattr(control, key, float(value) if isinstance(current[key], float) else value)
    return asdict(control)


@get("/_calls")
async def list_calls(sim: NamedDependency[SimulatorState]) -> list[dict[str, Any]]:
    """Every call served so far (provider, operation, reference, started, finished)."""
    return [asdict(call) for call in sim.calls]


@get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


def create_simulator(settings: Settings, rng: random.Random | None = None) -> Litestar:
    state = SimulatorState(settings, rng)

    def provide_state() -> SimulatorState:
        return state

    from litestar.di import Provide

    return Litestar(
        route_handlers=[
            create_charge,
            get_charge,
            refund_charge,
            list_controls,
            set_control,
            list_calls,
            health,
        ],
        dependencies={"sim": Provide(provide_state, use_cache=True, sync_to_thread=False)},
        openapi_config=None,
    )
