"""Statement-to-payment matching and discrepancy classification (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum


class Issue(StrEnum):
    AMOUNT = "amount"  # same reference, different amount
    MISSING = "missing"  # in the bank, not in ours
    UNRECORDED = "unrecorded"  # in ours, not in the bank past its settlement window
    DUPLICATE = "duplicate"  # the bank shows one payment twice
    TIMING = "timing"  # matched, but the money arrived outside the date window
    CURRENCY = "currency"  # same reference, different currency


ISSUE_TYPES: tuple[str, ...] = tuple(issue.value for issue in Issue)


class Action(StrEnum):
    """How finance resolved an issue."""

    ACCEPTED = "accepted"
    ADJUSTED = "adjusted"
    REFUNDED = "refunded"
    WRITTEN_OFF = "written_off"
    FALSE_POSITIVE = "false_positive"


class IssueFilter(StrEnum):
    """Which issues a list shows, by status."""

    OPEN = "open"
    RESOLVED = "resolved"
    ALL = "all"


@dataclass(frozen=True)
class Line:
    id: int
    value_date: date
    amount: Decimal
    currency: str
    reference: str | None


@dataclass(frozen=True)
class Candidate:
    """A payment a statement line may settle."""

    id: int
    reference: str
    amount: Decimal
    currency: str
    booked: date


@dataclass(frozen=True)
class Finding:
    line_id: int | None
    payment_id: int | None
    issue: Issue | None  # None: a clean match
    expected: Decimal | None = None
    actual: Decimal | None = None
    detail: str | None = None

    @property
    def matched(self) -> bool:
        return self.issue is None


@dataclass
class Matcher:
    """Classifies lines one at a time, remembering which payments are already taken, so a
    statement can be streamed through it in chunks."""

    window: timedelta = timedelta(days=2)
    taken: set[int] = field(default_factory=set)

    def by_reference(self, line: Line, payment: Candidate) -> Finding:
        """A line whose reference names `payment`."""
        if payment.id in self.taken:
            return Finding(line.id, payment.id, Issue.DUPLICATE, payment.amount, line.amount,
                           f"reference {payment.reference} appears again on the statement")
        self.taken.add(payment.id)
        if line.currency != payment.currency:
            return Finding(line.id, payment.id, Issue.CURRENCY, payment.amount, line.amount,
                           f"bank booked {line.currency}, payment is in {payment.currency}")
        if line.amount != payment.amount:
            return Finding(line.id, payment.id, Issue.AMOUNT, payment.amount, line.amount,
                           f"bank booked {line.amount}, payment is {payment.amount}")
        if abs(line.value_date - payment.booked) > self.window:
            return Finding(line.id, payment.id, Issue.TIMING, payment.amount, line.amount,
                           f"value date {line.value_date} is outside "
                           f"{self.window.days} days of {payment.booked}")
        return Finding(line.id, payment.id, None, payment.amount, line.amount)

    def by_amount(self, line: Line, candidates: Iterable[Candidate]) -> Finding:
        """A line without a usable reference: the closest untaken payment with the same
        amount and currency inside the date window, else the line is missing from ours."""
        fitting = [c for c in candidates
                   if c.id not in self.taken and c.amount == line.amount
                   and c.currency == line.currency
                   and abs(line.value_date - c.booked) <= self.window]
        if not fitting:
            return Finding(line.id, None, Issue.MISSING, None, line.amount,
                           f"no payment of {line.amount} {line.currency} near {line.value_date}")
        best = min(fitting, key=lambda c: (abs(line.value_date - c.booked), c.id))
        self.taken.add(best.id)
        return Finding(line.id, best.id, None, best.amount, line.amount,
                       "matched by amount and date")

    def unrecorded(self, payments: Iterable[Candidate], statement_end: date) -> list[Finding]:
        """Payments no line settled although their settlement window has passed."""
        return [Finding(None, p.id, Issue.UNRECORDED, p.amount, None,
                        f"not on the statement up to {statement_end}")
                for p in payments
                if p.id not in self.taken and p.booked + self.window <= statement_end]
