"""What the writes keep beside the data: the audit history and the live counts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db.models.base import Base, Id, Timestamp


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
