"""What the simulator holds: each provider's controls, the charges taken, the calls served."""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, get_args

from litestar.exceptions import HTTPException

from service import tls
from service.domain import catalog
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
        # What webhooks to an HTTPS gateway trust: its CA file, else the system's roots
        # (TlsConfigError on a bad file, when the simulator starts).
        self.webhook_trust = tls.client_context(settings.gateway_tls_ca_file)
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
