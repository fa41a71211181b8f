"""The create's floor (bench/floor.py) sends the provider what the gateway's adapter sends:
its event-loop form builds the request itself, for aiohttp, and must not drift from
HttpAdapter."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from decimal import Decimal

from bench.floor import signed_charge
from service.providers import signing
from service.providers.contract import ChargeRequest
from service.providers.http_adapter import Answer, HttpAdapter
from service.settings import ProviderCredentials

CREDENTIALS = ProviderCredentials("key-1", "secret-1", "merchant-1", "http://provider.test/")
CHARGE = ChargeRequest("NC-ABC", Decimal("150.00"), "SDG", "+249912345678", "ward 4",
                       "http://gateway.test/api/v1/webhooks/visa")


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, bytes | None, dict[str, str]]] = []

    def request(self, method: str, url: str, body: bytes | None,
                headers: Mapping[str, str]) -> Answer:
        self.sent.append((method, url, body, dict(headers)))
        return Answer(201, json.dumps({"id": "sim_1", "status": "succeeded",
                                       "amount": "150.00", "currency": "SDG"}).encode())


def test_the_floor_signs_and_sends_the_charge_the_adapter_sends() -> None:
    recorder = Recorder()
    HttpAdapter("visa", CREDENTIALS, recorder).initiate(CHARGE)
    [(method, url, body, headers)] = recorder.sent
    raw, floor_headers = signed_charge("visa", CREDENTIALS, CHARGE)
    assert (method, url) == ("POST", "http://provider.test/v1/payments")
    assert raw == body
    assert set(floor_headers) == set(headers)
    assert {k: v for k, v in floor_headers.items()
            if k not in ("X-Request-Id", signing.HEADER)} == {
        k: v for k, v in headers.items() if k not in ("X-Request-Id", signing.HEADER)}
    for sent in (headers, floor_headers):
        signing.verify(CREDENTIALS.api_secret, sent[signing.HEADER], raw, time.time(), 60)
