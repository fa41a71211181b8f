"""Payments, their providers, provider calls, refunds, webhooks and Idempotency-Keys."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from service.db.models.base import Base, Id, Money, Timestamp
from service.domain.status import PaymentStatus

STATUSES = ", ".join(f"'{s.value}'" for s in PaymentStatus)


class PaymentProvider(Base):
    __tablename__ = "payment_providers"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    display_name: Mapped[str] = mapped_column(String(64))
    provider_type: Mapped[str] = mapped_column(String(32))
    currencies: Mapped[str] = mapped_column(String(32))  # comma-separated ISO 4217 codes
    fee_percent: Mapped[Decimal] = mapped_column(Numeric(6, 3))
    fee_fixed: Mapped[Decimal] = mapped_column(Money)
    fee_min: Mapped[Decimal] = mapped_column(Money)
    fee_max: Mapped[Decimal | None] = mapped_column(Money)
    min_amount: Mapped[Decimal] = mapped_column(Money)
    max_amount: Mapped[Decimal] = mapped_column(Money)
    verification_type: Mapped[str] = mapped_column(String(16))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint(f"status IN ({STATUSES})", name="status"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("total_fees >= 0 AND total_fees <= amount", name="fees_within_amount"),
        CheckConstraint("refunded_amount >= 0 AND refunded_amount <= amount",
                        name="refunds_within_amount"),
        Index("ix_payments_facility_created", "facility_id", "created_at"),
        # The exporter and the daily summary read these without touching the table rows
        # (migration 0002): created in a window by provider and status, waiting payments
        # by status and provider, settled money by completion time.
        Index("ix_payments_provider_created_status", "provider_code", "created_at", "status"),
        Index("ix_payments_status_next_check", "status", "next_check_at"),
        Index("ix_payments_status_provider_created", "status", "provider_code", "created_at"),
        Index("ix_payments_patient", "patient_id"),
        Index("ix_payments_completed_revenue", "completed_at", "status", "provider_code",
              "currency", "amount", "total_fees"),
        # Reconciliation's match by amount and date (migration 0005).
        Index("ix_payments_provider_amount_created", "provider_code", "amount", "created_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    reference: Mapped[str] = mapped_column(String(40), unique=True)  # sent to the provider
    provider_code: Mapped[str] = mapped_column(ForeignKey("payment_providers.code"))
    facility_id: Mapped[str] = mapped_column(String(64))
    patient_id: Mapped[str] = mapped_column(String(64))
    invoice_id: Mapped[str | None] = mapped_column(String(64))
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    total_fees: Mapped[Decimal] = mapped_column(Money)
    # Kept equal to amount - total_fees by a trigger (see db/triggers/rules.py), never by the app.
    net_amount: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    refunded_amount: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    status: Mapped[str] = mapped_column(String(32))
    provider_reference: Mapped[str | None] = mapped_column(String(64))
    payer_account: Mapped[str | None] = mapped_column(String(255))  # AES-GCM ciphertext
    description: Mapped[str | None] = mapped_column(String(255))
    failure_reason: Mapped[str | None] = mapped_column(String(255))
    created_by: Mapped[str] = mapped_column(String(64))
    # The actor of the latest change; the audit trigger copies it into payment_audit_log.
    updated_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)
    completed_at: Mapped[datetime | None] = mapped_column(Timestamp)
    # Work queue for the payment worker: when to ask the provider next, and who holds it.
    next_check_at: Mapped[datetime | None] = mapped_column(Timestamp)
    check_attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(Timestamp)
    # New at every claim (migration 0004): a worker applies a result only while the row still
    # carries the token it claimed with, so a worker that lost its lease changes nothing.
    lease_token: Mapped[str | None] = mapped_column(String(32))


class PaymentAttempt(Base):
    """Every call made to a provider, successful or not."""

    __tablename__ = "payment_attempts"
    __table_args__ = (
        Index("ix_payment_attempts_payment", "payment_id"),
        Index("ix_payment_attempts_provider_created", "provider_code", "created_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"))
    provider_code: Mapped[str] = mapped_column(String(32))
    operation: Mapped[str] = mapped_column(String(16))  # initiate, status, refund
    request_id: Mapped[str] = mapped_column(String(40), unique=True)
    outcome: Mapped[str] = mapped_column(String(16))  # success, declined, pending, error, timeout
    provider_status: Mapped[str | None] = mapped_column(String(32))
    http_status: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(Timestamp)


class PaymentRefund(Base):
    __tablename__ = "payment_refunds"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("status IN ('pending', 'completed', 'failed')", name="status"),
        Index("ix_payment_refunds_payment", "payment_id"),
        Index("ix_payment_refunds_status_completed", "status", "completed_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"))
    amount: Mapped[Decimal] = mapped_column(Money)
    reason: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    provider_reference: Mapped[str | None] = mapped_column(String(64))
    requested_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    completed_at: Mapped[datetime | None] = mapped_column(Timestamp)
    # A pending refund (the provider did not answer) is asked again by the payment worker at
    # next_attempt_at, with backoff over `attempts` provider calls (migration 0003).
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(Timestamp)
    # The claim's fence, as on payments (migration 0004).
    lease_token: Mapped[str | None] = mapped_column(String(32))


class PaymentWebhook(Base):
    __tablename__ = "payment_webhooks"
    __table_args__ = (UniqueConstraint("provider_code", "event_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    provider_code: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(64))
    payment_reference: Mapped[str | None] = mapped_column(String(40))
    payload: Mapped[str] = mapped_column(Text)
    result: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(Timestamp)


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("scope", "key"),
        Index("ix_idempotency_keys_expires", "expires_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(128))  # caller subject + route
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))  # in_flight, completed
    # The public id of what the request created or changed (pay_…, re_…, run_…), written in
    # the same transaction as that change, so a retry after a crash answers with it instead
    # of doing the work again (migration 0004; it was payment_id before).
    resource_id: Mapped[str | None] = mapped_column(String(40))
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    locked_until: Mapped[datetime] = mapped_column(Timestamp)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    expires_at: Mapped[datetime] = mapped_column(Timestamp)
