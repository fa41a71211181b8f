"""Bank statements, their lines, what reconciliation found, and the run queue."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from service.db.models.base import Base, Id, Money, Timestamp


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
