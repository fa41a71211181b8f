"""The daily summary: one local day's payments, money, refunds and reconciliation state,
read from the database and rendered as a text and an HTML email (Jinja2)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import structlog
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.db.models import BankStatement, Payment, PaymentRefund
from service.domain.catalog import BY_CODE, PROVIDERS
from service.domain.status import OPEN, SETTLED, SUCCESSFUL, UNSUCCESSFUL, PaymentStatus
from service.reconciliation.reports import open_issue_counts
from service.settings import Settings
from service.workers import mailer

log = structlog.get_logger()
S = PaymentStatus
PROVIDER_CODES = [p.code for p in PROVIDERS]
# The on-call spec routes more than this many unresolved issues to email (medium).
ISSUES_THRESHOLD = 50
REVENUE_STATUSES = [s.value for s in SETTLED | {S.REFUNDED}]


@dataclass(frozen=True)
class ProviderDay:
    """Payments created with one provider that day, by outcome so far."""

    provider: str
    display_name: str
    created: int = 0
    successful: int = 0
    unsuccessful: int = 0
    open: int = 0
    cancelled: int = 0

    @property
    def success_rate(self) -> float | None:
        """Successful among those with an outcome (open and cancelled ones have none)."""
        decided = self.successful + self.unsuccessful
        return self.successful / decided if decided else None


@dataclass(frozen=True)
class Money:
    provider: str
    display_name: str
    currency: str
    count: int
    gross: Decimal
    fees: Decimal

    @property
    def net(self) -> Decimal:
        return self.gross - self.fees


@dataclass(frozen=True)
class Statement:
    bank: str
    source: str
    lines: int
    status: str


@dataclass(frozen=True)
class DailySummary:
    day: date
    timezone: str
    providers: list[ProviderDay]
    revenue: list[Money]
    refunds: list[Money]  # gross = refunded amount; fees unused
    failed_refunds: int
    pending_refunds: int
    pending_refund_amount: dict[str, Decimal]
    statements: list[Statement]
    open_issues: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> ProviderDay:
        rows = self.providers
        return ProviderDay("all", "All providers", sum(r.created for r in rows),
                           sum(r.successful for r in rows), sum(r.unsuccessful for r in rows),
                           sum(r.open for r in rows), sum(r.cancelled for r in rows))

    @property
    def open_issue_total(self) -> int:
        return sum(self.open_issues.values())

    @property
    def issues_over_threshold(self) -> bool:
        return self.open_issue_total > ISSUES_THRESHOLD


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The local day as a half-open range of naive UTC timestamps (as stored)."""
    start = datetime.combine(day, time(), zone).astimezone(UTC).replace(tzinfo=None)
    end = (datetime.combine(day + timedelta(days=1), time(), zone)
           .astimezone(UTC).replace(tzinfo=None))
    return start, end


def yesterday(zone: ZoneInfo, now: datetime | None = None) -> date:
    local = (now or datetime.now(UTC)).astimezone(zone)
    return local.date() - timedelta(days=1)


def gather(session: Session, day: date, zone: ZoneInfo) -> DailySummary:
    """Read the day's figures; each query is an index range (see migration 0002)."""
    start, end = day_bounds(day, zone)
    per: dict[str, dict[str, int]] = {}
    for provider, status, count in session.execute(
            select(Payment.provider_code, Payment.status, func.count())
            .where(Payment.provider_code.in_(PROVIDER_CODES), Payment.created_at >= start,
                   Payment.created_at < end)
            .group_by(Payment.provider_code, Payment.status)):
        bucket = per.setdefault(provider, dict.fromkeys(
            ("created", "successful", "unsuccessful", "open", "cancelled"), 0))
        bucket["created"] += count
        bucket[_outcome(S(status))] += count
    providers = [ProviderDay(code, BY_CODE[code].display_name, **per[code])
                 for code in PROVIDER_CODES if code in per]
    revenue = [Money(p, _name(p), c, n, gross or Decimal(0), fees or Decimal(0))
               for p, c, n, gross, fees in session.execute(
                   select(Payment.provider_code, Payment.currency, func.count(),
                          func.sum(Payment.amount), func.sum(Payment.total_fees))
                   .where(Payment.completed_at >= start, Payment.completed_at < end,
                          Payment.status.in_(REVENUE_STATUSES))
                   .group_by(Payment.provider_code, Payment.currency)
                   .order_by(Payment.provider_code, Payment.currency))]
    refunds = [Money(p, _name(p), c, n, amount or Decimal(0), Decimal(0))
               for p, c, n, amount in session.execute(
                   select(Payment.provider_code, Payment.currency, func.count(),
                          func.sum(PaymentRefund.amount))
                   .join(Payment, Payment.id == PaymentRefund.payment_id)
                   .where(PaymentRefund.status == "completed",
                          PaymentRefund.completed_at >= start, PaymentRefund.completed_at < end)
                   .group_by(Payment.provider_code, Payment.currency)
                   .order_by(Payment.provider_code, Payment.currency))]
    failed_refunds = int(session.scalar(
        select(func.count()).select_from(PaymentRefund)
        .where(PaymentRefund.status == "failed", PaymentRefund.completed_at >= start,
               PaymentRefund.completed_at < end)) or 0)
    pending_amount: dict[str, Decimal] = {}
    pending_count = 0
    for currency, count, amount in session.execute(
            select(Payment.currency, func.count(), func.sum(PaymentRefund.amount))
            .join(Payment, Payment.id == PaymentRefund.payment_id)
            .where(PaymentRefund.status == "pending").group_by(Payment.currency)):
        pending_amount[currency] = amount or Decimal(0)
        pending_count += count
    statements = [Statement(bank, source.rsplit("/", 1)[-1], lines, status)
                  for bank, source, lines, status in session.execute(
                      select(BankStatement.bank_code, BankStatement.source,
                             BankStatement.line_count, BankStatement.status)
                      .where(BankStatement.imported_at >= start, BankStatement.imported_at < end)
                      .order_by(BankStatement.id))]
    issues = open_issue_counts(session)
    return DailySummary(day, zone.key, providers, revenue, refunds, failed_refunds,
                        pending_count, pending_amount, statements, issues)


def _outcome(status: PaymentStatus) -> str:
    if status in SUCCESSFUL:
        return "successful"
    if status in UNSUCCESSFUL:
        return "unsuccessful"
    return "open" if status in OPEN else "cancelled"


def _name(code: str) -> str:
    spec = BY_CODE.get(code)
    return spec.display_name if spec else code


def _money(value: Decimal) -> str:
    return f"{value:,.2f}"


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f} %"


_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("service", "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_ENV.filters["money"] = _money
_ENV.filters["rate"] = _rate


def subject(summary: DailySummary) -> str:
    return f"NileCare payments: daily summary for {summary.day.isoformat()}"


def render(summary: DailySummary) -> tuple[str, str]:
    """The text and the HTML part."""
    values: dict[str, Any] = {"s": summary, "threshold": ISSUES_THRESHOLD}
    return (_ENV.get_template("daily_summary.txt").render(values),
            _ENV.get_template("daily_summary.html").render(values))


def message(settings: Settings, summary: DailySummary) -> EmailMessage:
    text, html = render(summary)
    mail = EmailMessage()
    mail["Subject"] = subject(summary)
    mail["From"] = settings.smtp_from
    mail["To"] = ", ".join(mailer.recipients(settings))
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = make_msgid(domain=settings.smtp_from.rsplit("@", 1)[-1])
    mail.set_content(text)
    mail.add_alternative(html, subtype="html")
    return mail


def deliver(settings: Settings, sessions: sessionmaker[Session], day: date) -> str | None:
    """Send the summary of `day`; returns None when sent, else why it was skipped (logged).

    Raises what SMTP raises, so the scheduler can release the day and try again later.
    """
    reason = mailer.skip_reason(settings)
    if reason is not None:
        log.info("daily_summary.skipped", day=day.isoformat(), reason=reason)
        return reason
    with sessions() as session:
        summary = gather(session, day, settings.zone)
    recipients = mailer.recipients(settings)
    mailer.send(settings, message(settings, summary), recipients)
    log.info("daily_summary.sent", day=day.isoformat(), recipients=len(recipients),
             payments=summary.total.created)
    return None
