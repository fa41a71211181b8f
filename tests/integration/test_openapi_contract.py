"""The published contract: what the gateway serves at /schema/openapi.json is the committed
openapi.json, and it states what a client generator needs (tests/e2e/test_schemathesis.py
checks, against a running gateway, that the API does what it says)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from litestar.testing import TestClient

from service.api.app import create_app
from service.settings import Settings

COMMITTED = Path(__file__).resolve().parents[2] / "openapi.json"
PUBLIC = {"/health", "/health/ready", "/api/v1/payment-providers", "/api/v1/webhooks/{provider}"}


def _served(settings_factory: Callable[..., Settings]) -> dict[str, Any]:
    with TestClient(create_app(settings_factory())) as client:
        response = client.get("/schema/openapi.json")
        assert response.status_code == 200
        document: dict[str, Any] = response.json()
        return document


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in document["paths"].items()
            for method, op in item.items()]


def test_the_gateway_serves_the_committed_document(
        settings_factory: Callable[..., Settings]) -> None:
    committed = json.loads(COMMITTED.read_text())
    # Twice: building an app must not change what the next one publishes.
    for _ in range(2):
        assert _served(settings_factory) == committed, "openapi.json is stale: make render-openapi"


def test_every_operation_says_who_may_call_it_and_how_it_fails() -> None:
    document = json.loads(COMMITTED.read_text())
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"] == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                                 "description": schemes["bearer"]["description"]}
    for path, method, op in _operations(document):
        where = f"{method.upper()} {path}"
        assert (path in PUBLIC) == ("security" not in op), where
        assert op.get("security") in (None, [{"bearer": []}]), where
        statuses = set(op["responses"])
        assert any(s.startswith("2") for s in statuses), where
        if path not in PUBLIC:
            assert {"401", "429", "503"} <= statuses, where
        for status, response in op["responses"].items():
            if status.startswith(("4", "5")):
                assert list(response["content"]) == ["application/problem+json"], where
                schema = response["content"]["application/problem+json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Problem"}, where
                headers = set(response.get("headers", {}))
                assert ("Retry-After" in headers) == (status in {"409", "429", "503"}), where
                # A bearer challenge only where a bearer token is what failed.
                assert ("WWW-Authenticate" in headers) == (
                    status == "401" and "security" in op), where
            elif "content" in response:
                schema = next(iter(response["content"].values()))["schema"]
                assert "$ref" in schema, f"{where} {status}: an untyped body"
        if method == "post" and path not in PUBLIC:
            names = {p["name"] for p in op.get("parameters", []) if p["in"] == "header"}
            assert "Idempotency-Key" in names, where


def test_the_webhook_states_its_signature_and_body() -> None:
    op = json.loads(COMMITTED.read_text())["paths"]["/api/v1/webhooks/{provider}"]["post"]
    signature = next(p for p in op["parameters"] if p["name"] == "X-NileCare-Signature")
    assert signature["in"] == "header" and signature["required"] is True
    event = op["requestBody"]["content"]["application/json"]["schema"]
    assert event["required"] == ["id", "type", "data"]
    assert "signature" in op["responses"]["401"]["description"].lower()


def test_a_create_states_each_providers_rules() -> None:
    schema = json.loads(COMMITTED.read_text())["components"]["schemas"]["CreatePayment"]
    by_provider = {code: variant for variant in schema["oneOf"]
                   for code in variant["properties"]["provider"]["enum"]}
    wallet, card = by_provider["zain_cash"], by_provider["visa"]
    assert "payer_phone" in wallet["required"] and "payer_phone" not in card["required"]
    assert wallet["properties"]["currency"]["enum"] == ["SDG"]
    assert card["properties"]["currency"]["enum"] == ["SDG", "USD"]
    assert all(v["additionalProperties"] is False for v in schema["oneOf"])
