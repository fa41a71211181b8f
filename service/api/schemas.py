"""Request bodies of the payment API, validated before anything touches the database."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from service.domain.catalog import normalise_phone
from service.domain.money import parse_amount

ID = r"^[A-Za-z0-9._:-]+$"


class CreatePayment(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    provider: str = Field(min_length=1, max_length=32, examples=["zain_cash"])
    amount: str = Field(description="Decimal string with at most two places", examples=["150.00"])
    currency: str = Field(pattern=r"^[A-Z]{3}$", examples=["SDG"])
    patient_id: str = Field(min_length=1, max_length=64, pattern=ID)
    facility_id: str | None = Field(None, min_length=1, max_length=64, pattern=ID,
                                    description="Defaults to the caller's facility")
    invoice_id: str | None = Field(None, min_length=1, max_length=64, pattern=ID)
    payer_phone: str | None = Field(None, max_length=20, examples=["+249912345678"])
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


class VerifyPayment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve: bool = True
    note: str | None = Field(None, max_length=1000)


class RefundPayment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: str | None = Field(None, description="Omit for a full refund")
    reason: str | None = Field(None, max_length=255)

    @field_validator("amount", mode="before")
    @classmethod
    def _amount(cls, value: object) -> str | None:
        return None if value is None else str(parse_amount(value))
