"""What the hospitals do during a drill: a steady stream of payments through the gateway's
API, and the rows a seed drill adds (cash payments left for a cashier, bank statement lines
that match nothing) and takes away again, all through the API a user has."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import httpx

from service.domain.catalog import BY_CODE
from tests.drill.system import Product

# Providers that carry the background load; the drilled ones get traffic only while drilled,
# so a rate over their window starts from the fault.
BACKGROUND = {"bank_of_khartoum": 0.25, "faisal_islamic": 0.25, "omdurman_national": 0.25,
              "sudani_cash": 0.25}
DRILLED_RATE = 1.0  # payments per second to a provider under a drill


def payment(provider: str) -> dict[str, str]:
    body = {"provider": provider, "amount": "150.00", "currency": "SDG",
            "patient_id": f"drill-{uuid.uuid4().hex[:8]}"}
    if BY_CODE[provider].needs_phone:
        body["payer_phone"] = "+249912345678"
    return body


class Traffic:
    """Creates payments at the configured rate per provider, each in a pool thread so a
    hung provider slows nothing else down."""

    def __init__(self, system: Product) -> None:
        self.system = system
        self.rates: dict[str, float] = dict(BACKGROUND)
        self.replies: Counter[str] = Counter()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=24, thread_name_prefix="traffic")
        self._client = httpx.Client(
            base_url=system.gateway, timeout=30, verify=system.trust,
            headers={"Authorization": f"Bearer {system.token('drill-traffic')}"})
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True, name="traffic")

    def start(self) -> None:
        self._thread.start()

    def set(self, provider: str, per_second: float) -> None:
        with self._lock:
            if per_second:
                self.rates[provider] = per_second
            else:
                self.rates.pop(provider, None)

    def _run(self) -> None:
        due: dict[str, float] = {}
        while not self._stop.wait(0.05):
            now = time.monotonic()
            with self._lock:
                rates = dict(self.rates)
            for provider, rate in rates.items():
                if now >= due.setdefault(provider, now):
                    due[provider] = now + 1 / rate
                    self._pool.submit(self._create, provider)

    def _create(self, provider: str) -> None:
        try:
            reply = self._client.post("/api/v1/payments", json=payment(provider))
            outcome = str(reply.status_code)
        except httpx.HTTPError as exc:
            outcome = type(exc).__name__
        with self._lock:
            self.replies[f"{provider} {outcome}"] += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()


def _client(system: Product, subject: str) -> httpx.Client:
    return httpx.Client(base_url=system.gateway, timeout=30, verify=system.trust,
                        headers={"Authorization": f"Bearer {system.token(subject)}"})


def seed_awaiting(system: Product, count: int) -> list[str]:
    """`count` cash payments, which wait for a cashier (awaiting_verification)."""
    with _client(system, "drill-seed") as client:
        ids = []
        for _ in range(count):
            reply = client.post("/api/v1/payments", json=payment("cash"))
            reply.raise_for_status()
            ids.append(str(reply.json()["id"]))
        return ids


def unseed_awaiting(system: Product, ids: list[str]) -> None:
    with _client(system, "drill-seed") as client:
        for payment_id in ids:
            client.post(f"/api/v1/payments/{payment_id}/cancel").raise_for_status()


def seed_statement(system: Product, count: int) -> None:
    """A bank statement of `count` lines no payment matches, reconciled at once by
    `nilecare reconcile` (what the reconciliation worker runs at night)."""
    lines = ["value_date,amount,currency,reference,description"]
    today = date.today().isoformat()
    lines += [f"{today},{100 + n}.00,SDG,NC-DRILL{uuid.uuid4().hex[:16].upper()},drill"
              for n in range(count)]
    system.reconcile({
        # The account is the drill facility's, so its finance users see (and resolve) the
        # issues.
        "banks.json": json.dumps({"bank_of_khartoum": {"facility_id": "fac-drill"}}),
        f"bank_of_khartoum/drill-{uuid.uuid4().hex[:8]}.csv": "\n".join(lines) + "\n",
    })


def unseed_statement(system: Product) -> None:
    """Finance resolves every open issue."""
    with _client(system, "drill-finance") as client:
        while True:
            items = client.get("/api/v1/reconciliation/issues",
                               params={"status": "open", "limit": 500}).json()["items"]
            if not items:
                return
            for item in items:
                client.post(f"/api/v1/reconciliation/issues/{item['id']}/resolve",
                            json={"action": "written_off", "note": "fire drill"}
                            ).raise_for_status()
