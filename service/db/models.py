"""The tables of the payment database (SQLAlchemy 2.0 declarative models): the ten of the
brief, the reconciliation run queue and the live counts the exporter reads."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from service.domain.status import PaymentStatus

# Names every constraint, so Alembic migrations are the same on MySQL and SQLite.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Money = Numeric(18, 2, asdecimal=True)
# BIGINT ids on MySQL; SQLite only autoincrements an INTEGER PRIMARY KEY.
Id = BigInteger().with_variant(Integer(), "sqlite")
# Always UTC, stored naive; microseconds on MySQL so leases and audit rows order exactly.
Timestamp = DateTime(timezone=False).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

STATUSES = ", ".join(f"'{s.value}'" for s in PaymentStatus)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


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


class BankStatement(Base):
    __tablename__ = "bank_statements"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    bank_code: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(512))  # file path or s3:// URL
    checksum: Mapped[str] = mapped_column(String(64), unique=True)
    statement_date: Mapped[date | None] = mapped_column(Date)
    line_count: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16))  # importing, imported, reconciled
    imported_at: Mapped[datetime] = mapped_column(Timestamp)
    # The facility whose bank account this is (banks.json `facility_id`), so an issue about
    # money no payment explains still belongs to someone (migration 0004).
    facility_id: Mapped[str | None] = mapped_column(String(64))
    # The last position (line_no) whose findings are written: a resumed run goes on after it
    # (migration 0005).
    matched_through: Mapped[int | None] = mapped_column(Integer)


class BankStatementLine(Base):
    __tablename__ = "bank_statement_lines"
    __table_args__ = (
        UniqueConstraint("statement_id", "line_no"),
        Index("ix_bank_statement_lines_reference", "reference"),
        Index("ix_bank_statement_lines_value_date", "value_date"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    statement_id: Mapped[int] = mapped_column(ForeignKey("bank_statements.id"))
    line_no: Mapped[int] = mapped_column(Integer)
    value_date: Mapped[date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    reference: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(String(255))
    # Which payment a line settled is its finding's (payment_reconciliation, result
    # 'matched'), stated once there (migration 0005 dropped matched_payment_id).


class PaymentReconciliation(Base):
    """One match or one discrepancy found by a reconciliation run."""

    __tablename__ = "payment_reconciliation"
    __table_args__ = (
        CheckConstraint(
            "issue_type IS NULL OR issue_type IN "
            "('amount', 'missing', 'unrecorded', 'duplicate', 'timing', 'currency')",
            name="issue_type",
        ),
        Index("ix_payment_reconciliation_status_type", "status", "issue_type"),
        Index("ix_payment_reconciliation_run", "run_id"),
        # One finding per statement line, whatever runs overlap (migration 0004).
        Index("uq_payment_reconciliation_statement_line_id", "statement_line_id", unique=True),
        Index("ix_payment_reconciliation_facility_status", "facility_id", "status"),
        # "Did a line settle this payment?" without a scan (migration 0005).
        Index("ix_payment_reconciliation_payment_id_result", "payment_id", "result"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(40))
    statement_line_id: Mapped[int | None] = mapped_column(ForeignKey("bank_statement_lines.id"))
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"))
    # The payment's facility, else the statement's; NULL only admins see (migration 0004).
    facility_id: Mapped[str | None] = mapped_column(String(64))
    result: Mapped[str] = mapped_column(String(16))  # matched, issue
    issue_type: Mapped[str | None] = mapped_column(String(16))
    expected_amount: Mapped[Decimal | None] = mapped_column(Money)
    actual_amount: Mapped[Decimal | None] = mapped_column(Money)
    detail: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))  # open, resolved (issues); closed (matches)
    resolution_action: Mapped[str | None] = mapped_column(String(32))
    resolution_note: Mapped[str | None] = mapped_column(String(1000))
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    resolved_at: Mapped[datetime | None] = mapped_column(Timestamp)
    created_at: Mapped[datetime] = mapped_column(Timestamp)


class ReconciliationRun(Base):
    """A requested reconciliation run, executed by the reconciliation worker (migration 0004).

    `slot` is 'queued' on the one run waiting to start and 'active' on the one running, NULL
    otherwise; its unique key is what lets the database, not the callers, keep runs one at a
    time and fold concurrent requests into one.
    """

    __tablename__ = "reconciliation_runs"
    __table_args__ = (
        CheckConstraint("status IN ('requested', 'running', 'completed', 'failed')",
                        name="status"),
        CheckConstraint("slot IS NULL OR slot IN ('queued', 'active')", name="slot"),
        UniqueConstraint("slot"),
        UniqueConstraint("scheduled_for"),
        Index("ix_reconciliation_runs_requested_at", "requested_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    slot: Mapped[str | None] = mapped_column(String(8))
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[datetime] = mapped_column(Timestamp)
    # The local day whose scheduled run this is (unique: one per day, however many workers).
    scheduled_for: Mapped[date | None] = mapped_column(Date)
    started_at: Mapped[datetime | None] = mapped_column(Timestamp)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp)
    # The worker executing it; a run whose lease ran out (its worker died) is taken over.
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(Timestamp)
    statements: Mapped[int] = mapped_column(Integer, default=0)
    lines: Mapped[int] = mapped_column(Integer, default=0)
    matched: Mapped[int] = mapped_column(Integer, default=0)
    issues: Mapped[str | None] = mapped_column(Text)  # JSON: issue type -> count
    error: Mapped[str | None] = mapped_column(String(255))


class PaymentAuditLog(Base):
    """Append-only history; triggers write payment status changes and refuse edits."""

    __tablename__ = "payment_audit_log"
    __table_args__ = (Index("ix_payment_audit_log_entity", "entity_type", "entity_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    entity_type: Mapped[str] = mapped_column(String(32))  # payment, reconciliation, refund
    entity_id: Mapped[int] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(32))
    old_value: Mapped[str | None] = mapped_column(String(64))
    new_value: Mapped[str | None] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(Timestamp)


class LiveCount(Base):
    """Counts the writes keep (db/triggers/counts.py, since migration 0005), so the exporter
    reads a few dozen rows instead of counting a queue: ('waiting', provider, status) for payments
    awaiting an answer, ('open_issue', issue type, '') for unresolved reconciliation issues.
    Spread over SHARDS rows per key (the row's id modulo SHARDS), so concurrent writers rarely
    wait on the same counter; a reader sums them."""

    __tablename__ = "live_counts"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    label_a: Mapped[str] = mapped_column(String(32), primary_key=True)
    label_b: Mapped[str] = mapped_column(String(32), primary_key=True)
    shard: Mapped[int] = mapped_column(Integer, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)


for _table in Base.metadata.tables.values():
    # InnoDB for row locks (SKIP LOCKED) and transactions; utf8mb4 for Arabic names.
    _table.kwargs.update(mysql_engine="InnoDB", mysql_charset="utf8mb4")

TABLES = tuple(sorted(Base.metadata.tables))
