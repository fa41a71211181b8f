"""What a reconciliation run may match: the SQL conditions its statements share."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Connection, Table, and_, func, or_, select

from service.db.models import BankStatementLine, Payment, PaymentReconciliation
from service.domain.status import SETTLED, PaymentStatus

S = PaymentStatus
# Payments a bank statement settles or should show.
SCOPE_PROVIDERS = ("bank_transfer",)
SCOPE_STATUSES = [S.AWAITING_VERIFICATION.value, *(s.value for s in SETTLED)]
LINES = cast(Table, BankStatementLine.__table__)
FINDINGS = cast(Table, PaymentReconciliation.__table__)
PAYMENTS = cast(Table, Payment.__table__)


def in_scope(p: Any = PAYMENTS) -> Any:
    return and_(p.c.provider_code.in_(SCOPE_PROVIDERS), p.c.status.in_(SCOPE_STATUSES))


def taken(payment_id: Any, run_id: str, statement_id: int) -> Any:
    """A line of this run, or of this statement (a resumed run has a new id), already has a
    finding naming the payment: a later line naming it again is a duplicate."""
    earlier = FINDINGS.alias("earlier")
    earlier_line = LINES.alias("earlier_line")
    return (select(earlier.c.id)
            .select_from(earlier.join(earlier_line,
                                      earlier_line.c.id == earlier.c.statement_line_id))
            .where(earlier.c.payment_id == payment_id,
                   or_(earlier.c.run_id == run_id, earlier_line.c.statement_id == statement_id))
            .exists())


def judged(line_id: Any) -> Any:
    """The line already has its finding (one per line: a unique key) though the checkpoint
    is before it: its chunk was judged and the run stopped before the chunk's confirm and
    checkpoint (or it was written before checkpoints existed)."""
    done = FINDINGS.alias("done_line")
    return select(done.c.id).where(done.c.statement_line_id == line_id).exists()


def named_on(statement_id: int, reference: Any) -> Any:
    """A line of the statement names this reference: the payment is that line's to settle,
    never taken by another line's amount, wherever the chunks fall."""
    naming = LINES.alias("naming")
    return (select(naming.c.id)
            .where(naming.c.statement_id == statement_id, naming.c.reference == reference)
            .exists())


def days_apart(connection: Connection, day: Any, moment: Any) -> Any:
    """Whole days between a DATE and the date of a DATETIME, as rules.py counts them."""
    if connection.dialect.name == "sqlite":
        return func.abs(func.julianday(day) - func.julianday(func.date(moment)))
    return func.abs(func.datediff(day, moment))
