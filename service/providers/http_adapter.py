"""The JSON-over-HTTP adapter used by every electronic provider (banks, wallets, cards)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from urllib3.exceptions import HTTPError, NewConnectionError, TimeoutError

from service.domain.money import fmt
from service.domain.status import PaymentStatus
from service.providers import signing
from service.providers.contract import (
    ChargeRequest,
    ProviderError,
    ProviderRefused,
    ProviderReply,
    ProviderTimeout,
    ProviderUnavailable,
    RefundReply,
    check_integrity,
)
from service.settings import ProviderCredentials

# The adapter contract's wire statuses, in our vocabulary.
WIRE_STATUS = {
    "succeeded": PaymentStatus.CONFIRMED,
    "pending": PaymentStatus.PROCESSING,
    "declined": PaymentStatus.REJECTED,
    "failed": PaymentStatus.FAILED,
}


@dataclass(frozen=True)
class Answer:
    """What a provider answered: the HTTP status and the body."""

    status_code: int
    content: bytes


class Http(Protocol):
    """Sends one request and reads the whole answer (registry.ProviderHttp); raises
    urllib3's TimeoutError when the provider did not answer in time, and its HTTPError
    when the request could not be sent or the answer not read."""

    def request(self, method: str, url: str, body: bytes | None,
                headers: Mapping[str, str]) -> Answer: ...


class HttpAdapter:
    def __init__(self, code: str, credentials: ProviderCredentials, client: Http) -> None:
        if credentials.api_url is None:
            raise ValueError(f"provider {code} has credentials but no API URL")
        self.code = code
        self._credentials = credentials
        self._base = credentials.api_url.rstrip("/")
        self._client = client

    def initiate(self, request: ChargeRequest) -> ProviderReply:
        body = {
            "merchant_id": self._credentials.merchant_id,
            "reference": request.reference,
            "amount": fmt(request.amount),
            "currency": request.currency,
            "payer_phone": request.payer_phone,
            "description": request.description,
            "callback_url": request.callback_url,
            "scheme": self.code,
        }
        reply = self._reply(self._call("POST", "/v1/payments", body))
        return check_integrity(reply, request.amount, request.currency)

    def status(self, reference: str, amount: Decimal, currency: str) -> ProviderReply:
        response = self._call("GET", f"/v1/payments/{reference}", None)
        if response.status_code == 404:
            # The provider never registered the charge: nothing was taken.
            return ProviderReply(
                PaymentStatus.FAILED, None, amount, currency, 404, "not found at provider"
            )
        return check_integrity(self._reply(response), amount, currency)

    def refund(
        self, reference: str, refund_reference: str, amount: Decimal, currency: str
    ) -> RefundReply:
        body = {"refund_reference": refund_reference, "amount": fmt(amount), "currency": currency}
        response = self._call("POST", f"/v1/payments/{reference}/refunds", body)
        data = self._json(response)
        if response.status_code >= 400:
            raise ProviderRefused(f"{self.code} refused the refund: {data.get('error')}")
        return RefundReply(
            data.get("status") == "succeeded",
            data.get("id"),
            response.status_code,
            data.get("decline_reason"),
        )

    def _call(self, method: str, path: str, body: dict[str, Any] | None) -> Answer:
        raw = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "X-NileCare-Key": self._credentials.api_key,
            "X-Request-Id": str(uuid.uuid4()),
            signing.HEADER: signing.sign(self._credentials.api_secret, raw, int(time.time())),
        }
        try:
            response = self._client.request(method, self._base + path, raw or None, headers)
        except NewConnectionError as exc:  # refused or unresolvable (urllib3 files it as a
            # connect timeout, for compatibility): nothing was sent
            raise ProviderUnavailable(f"{self.code}: {type(exc).__name__}") from exc
        except TimeoutError as exc:
            raise ProviderTimeout(f"{self.code}: {type(exc).__name__}") from exc
        except HTTPError as exc:
            raise ProviderUnavailable(f"{self.code}: {type(exc).__name__}") from exc
        if response.status_code >= 500:
            # A 5xx may have been sent after the charge was taken: the outcome is unknown.
            raise ProviderUnavailable(f"{self.code}: HTTP {response.status_code}")
        if response.status_code in (401, 403):
            raise ProviderRefused(
                f"{self.code} rejected our credentials (HTTP {response.status_code})"
            )
        return response

    def _json(self, response: Answer) -> dict[str, Any]:
        try:
            data = json.loads(response.content)
        except ValueError:
            raise ProviderUnavailable(f"{self.code}: reply is not JSON") from None
        if not isinstance(data, dict):
            raise ProviderUnavailable(f"{self.code}: reply is not a JSON object")
        return data

    def _reply(self, response: Answer) -> ProviderReply:
        data = self._json(response)
        if response.status_code >= 400:
            raise ProviderRefused(f"{self.code} refused the request: {data.get('error')}")
        status = WIRE_STATUS.get(str(data.get("status")))
        if status is None:
            raise ProviderError(f"{self.code}: unknown status {data.get('status')!r}")
        try:
            amount = Decimal(str(data["amount"]))
            currency = str(data["currency"])
        except (KeyError, InvalidOperation):
            raise ProviderError(f"{self.code}: reply lacks amount or currency") from None
        return ProviderReply(
            status,
            data.get("id"),
            amount,
            currency,
            response.status_code,
            data.get("decline_reason"),
        )
