"""Request bodies of the payment API, validated before anything touches the database."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from service.domain.catalog import PHONE_PATTERN, normalise_phone
from service.domain.money import AMOUNT_PATTERN, parse_amount
from service.reconciliation.rules import Action

ID = r"^[A-Za-z0-9._:-]+$"


class Body(BaseModel):
    """A request body: a field it does not define is refused (422), and the OpenAPI document
    says so (service/api/bodies.py). A field with json_schema_extra keeps its examples in it:
    Litestar (2.25) rewrites that dict in place, adding `examples=` to it on every app."""

    model_config = ConfigDict(extra="forbid")


class CreatePayment(Body):
    provider: str = Field(min_length=1, max_length=32, examples=["zain_cash"])
    amount: str = Field(description="Decimal string with at most two places; each provider's "
                        "limits apply",
                        json_schema_extra={"pattern": AMOUNT_PATTERN, "examples": ["150.00"]})
    currency: str = Field(pattern=r"^[A-Z]{3}$", examples=["SDG"])
    patient_id: str = Field(min_length=1, max_length=64, pattern=ID)
    facility_id: str | None = Field(None, min_length=1, max_length=64, pattern=ID,
                                    description="Defaults to the caller's facility")
    invoice_id: str | None = Field(None, min_length=1, max_length=64, pattern=ID)
    payer_phone: str | None = Field(None, max_length=20,
                                    description="A Sudanese mobile number; required by "
                                    "mobile and digital wallets",
                                    json_schema_extra={"pattern": PHONE_PATTERN,
                                                       "examples": ["+249912345678"]})
    description: str | None = Field(None, max_length=255)

    @field_validator("amount", mode="before")
    @classmethod
    def _amount(cls, value: object) -> str:
        return str(parse_amount(value))

    @field_validator("payer_phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        return None if value is None else normalise_phone(value)

    def decimal_amount(self) -> Decimal:
        return Decimal(self.amount)


class VerifyPayment(Body):

    approve: bool = True
    note: str | None = Field(None, max_length=1000)


class RefundPayment(Body):

    amount: str | None = Field(None, description="Omit for a full refund",
                               json_schema_extra={"pattern": AMOUNT_PATTERN})
    reason: str | None = Field(None, max_length=255)

    @field_validator("amount", mode="before")
    @classmethod
    def _amount(cls, value: object) -> str | None:
        return None if value is None else str(parse_amount(value))


class Resolve(Body):
    action: Action
    note: str = Field(min_length=1, max_length=1000)
