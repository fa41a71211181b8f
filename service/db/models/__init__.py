"""The tables of the payment database (SQLAlchemy 2.0 declarative models): the ten of the
brief, the reconciliation run queue and the live counts the exporter reads."""

# Importing this package declares every table on Base.metadata, which Alembic compares.

from __future__ import annotations

from service.db.models.base import Base
from service.db.models.bookkeeping import LiveCount, PaymentAuditLog
from service.db.models.payments import (
    IdempotencyKey,
    Payment,
    PaymentAttempt,
    PaymentProvider,
    PaymentRefund,
    PaymentWebhook,
)
from service.db.models.reconciliation import (
    BankStatement,
    BankStatementLine,
    PaymentReconciliation,
    ReconciliationRun,
)

for _table in Base.metadata.tables.values():
    # InnoDB for row locks (SKIP LOCKED) and transactions; utf8mb4 for Arabic names.
    _table.kwargs.update(mysql_engine="InnoDB", mysql_charset="utf8mb4")

TABLES = tuple(sorted(Base.metadata.tables))


__all__ = [
    "TABLES",
    "BankStatement",
    "BankStatementLine",
    "Base",
    "IdempotencyKey",
    "LiveCount",
    "Payment",
    "PaymentAttempt",
    "PaymentAuditLog",
    "PaymentProvider",
    "PaymentReconciliation",
    "PaymentRefund",
    "PaymentWebhook",
    "ReconciliationRun",
]
