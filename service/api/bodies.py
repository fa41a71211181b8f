"""The request bodies as the OpenAPI document states them: pydantic's own JSON Schema of each
model (the one it validates by, so patterns, lengths and the refusal of unknown fields are
all there), and for a create, one variant per kind of provider with the rules the service
checks from the provider catalogue: its providers, currencies, amount limits, and whether the
payer's phone is required.
"""

from __future__ import annotations

import copy
from typing import Any

from service.api.schemas import Body, CreatePayment
from service.domain import catalog, patterns
from service.services.webhooks import MAX_EVENT_ID, MAX_EVENT_TYPE, MAX_REFERENCE

REF = "#/components/schemas/{model}"


def schemas() -> dict[str, dict[str, Any]]:
    """Each request body's schema by model name."""
    out: dict[str, dict[str, Any]] = {}
    for model in _subclasses(Body):
        schema = model.model_json_schema(ref_template=REF)
        out.update(schema.pop("$defs", {}))  # the types it refers to, as components
        out[model.__name__] = schema
    out[CreatePayment.__name__] = create_payment(out[CreatePayment.__name__])
    return out


def create_payment(base: dict[str, Any]) -> dict[str, Any]:
    """One variant of `base` per group of providers that share their rules."""
    groups: dict[tuple[Any, ...], list[catalog.ProviderSpec]] = {}
    for spec in catalog.PROVIDERS:
        rules = (spec.currencies, spec.min_amount, spec.max_amount, spec.needs_phone)
        groups.setdefault(rules, []).append(spec)
    variants = []
    for (currencies, low, high, needs_phone), specs in groups.items():
        codes = [s.code for s in specs]
        variant = copy.deepcopy(base)
        variant["title"] = f"CreatePayment ({', '.join(codes)})"
        props = variant["properties"]
        props["provider"] = {"type": "string", "enum": codes, "examples": codes[:1]}
        props["currency"] = {"type": "string", "enum": list(currencies),
                             "examples": list(currencies[:1])}
        props["amount"] = {**props["amount"], "pattern": patterns.amount(low, high),
                           "description": f"{low} to {high}, at most two decimals"}
        if needs_phone:
            props["payer_phone"] = {"type": "string", "maxLength": 20,
                                    "pattern": catalog.PHONE_PATTERN,
                                    "examples": ["+249912345678"]}
            variant["required"] = [*variant.get("required", []), "payer_phone"]
        variants.append(variant)
    return {"title": base["title"], "oneOf": variants,
            "description": "The fields of a payment; which values are allowed depends on "
                           "the provider (GET /api/v1/payment-providers lists them)."}


def webhook_event() -> dict[str, Any]:
    """A provider's event: what the webhook reads of it (other fields are kept, unread)."""
    def text(longest: int) -> dict[str, Any]:
        return {"type": "string", "minLength": 1, "maxLength": longest}
    return {"title": "WebhookEvent", "type": "object", "required": ["id", "type", "data"],
            "properties": {
                "id": text(MAX_EVENT_ID), "type": text(MAX_EVENT_TYPE),
                "data": {"type": "object", "required": ["reference"],
                         "properties": {"reference": text(MAX_REFERENCE)}}}}


def _subclasses(cls: type[Body]) -> list[type[Body]]:
    out: list[type[Body]] = []
    for sub in cls.__subclasses__():
        out += [sub, *_subclasses(sub)]
    return out
