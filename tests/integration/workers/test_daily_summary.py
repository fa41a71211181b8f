"""The daily summary on real MariaDB, delivered to a real SMTP server (aiosmtpd) on
127.0.0.1: yesterday's numbers in both parts, once a day across workers, and the CLI."""

from __future__ import annotations

import email
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from email.message import EmailMessage
from email.policy import default
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import insert, select

from service.db.models import BankStatement, Payment, PaymentReconciliation, PaymentRefund
from service.services.context import Context
from service.settings import load
from service.workers import daily_summary
from service.workers.tasks import Scheduler
from tests.servers import free_port


class Sink:
    def __init__(self) -> None:
        self.received: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(  # noqa: N802 - the name aiosmtpd calls
            self, _server: Any, _session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=default)
        assert isinstance(parsed, EmailMessage)
        self.received.append((list(envelope.rcpt_tos), parsed))
        return "250 Message accepted"


@pytest.fixture
def smtp() -> Iterator[tuple[int, Sink]]:
    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, sink
    controller.stop()


def _at(day: date, hour: int, zone: Any) -> datetime:
    """Local `hour` o'clock on `day`, as stored (naive UTC)."""
    return datetime.combine(day, time(hour), zone).astimezone(UTC).replace(tzinfo=None)


def _seed(ctx: Context) -> date:
    zone = ctx.settings.zone
    day = daily_summary.yesterday(zone)
    noon, early = _at(day, 12, zone), _at(day, 0, zone) + timedelta(minutes=5)
    rows: list[dict[str, Any]] = []

    def add(provider: str, status: str, amount: str, fees: str, currency: str = "SDG",
            created: datetime = noon) -> None:
        settled = status not in ("awaiting_verification", "processing")
        rows.append({
            "public_id": f"pay_sum_{len(rows)}", "reference": f"NC-SUM-{len(rows)}",
            "provider_code": provider, "facility_id": "fac-1", "patient_id": "p",
            "amount": Decimal(amount), "currency": currency, "total_fees": Decimal(fees),
            "net_amount": Decimal(0), "refunded_amount": Decimal(0), "status": status,
            "created_by": "t", "updated_by": "t", "created_at": created,
            "updated_at": created, "completed_at": created if settled else None,
            "check_attempts": 0})

    for _ in range(3):
        add("zain_cash", "confirmed", "100.00", "1.00")
    add("zain_cash", "failed", "70.00", "0.70")
    add("visa", "confirmed", "50.00", "1.25", "USD", created=early)  # just after midnight
    add("cash", "awaiting_verification", "20.00", "0")
    add("zain_cash", "confirmed", "999.00", "9.99", created=noon + timedelta(days=1))  # today
    add("zain_cash", "confirmed", "888.00", "8.88", created=noon - timedelta(days=1))
    with ctx.sessions.begin() as session:
        session.execute(insert(Payment), rows)
    with ctx.sessions() as session:
        ids = list(session.scalars(select(Payment.id).where(
            Payment.provider_code == "zain_cash", Payment.status == "confirmed",
            Payment.created_at == noon).order_by(Payment.id)))
    with ctx.sessions.begin() as session:
        session.execute(insert(PaymentRefund), [
            {"public_id": "re_done", "payment_id": ids[0], "amount": Decimal("40.00"),
             "status": "completed", "requested_by": "fin", "created_at": noon,
             "completed_at": noon},
            {"public_id": "re_wait", "payment_id": ids[1], "amount": Decimal("10.00"),
             "status": "pending", "requested_by": "fin", "created_at": noon}])
        session.execute(insert(PaymentReconciliation), [
            {"run_id": "run_sum", "result": "issue", "issue_type": kind, "status": status,
             "created_at": noon}
            for kind, status in (("missing", "open"), ("missing", "open"), ("amount", "open"),
                                 ("timing", "resolved"))])
        session.add(BankStatement(bank_code="bank_of_khartoum",
                                  source=f"/statements/bank_of_khartoum/{day}.csv",
                                  checksum="c" * 64, line_count=1234, status="reconciled",
                                  imported_at=noon))
    return day


def _mail_settings(ctx: Context, port: int, **extra: str) -> dict[str, str]:
    return {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port), "SMTP_STARTTLS": "false",
            "SUMMARY_RECIPIENTS": "finance@hospital.sd, ops@hospital.sd", **extra}


def _check_text(text: str) -> None:
    assert "Total 6: successful 4, failed or rejected 1, still open 1, cancelled 0" in text
    assert "Success rate 80.0 %" in text
    zain = next(ln for ln in text.splitlines() if "Zain Cash" in ln and "gross" in ln)
    assert ("SDG" in zain and " 3 payments" in zain and "300.00" in zain and "3.00" in zain
            and "297.00" in zain)
    visa = next(ln for ln in text.splitlines() if ln.strip().startswith("Visa") and "gross" in ln)
    assert "USD" in visa and "50.00" in visa and "1.25" in visa and "48.75" in visa
    assert not any("999.00" in ln or "888.00" in ln for ln in text.splitlines())
    refund = next(ln for ln in text.splitlines() if "Zain Cash" in ln and "refunds" in ln)
    assert " 1 refunds" in refund and "40.00" in refund
    assert "Still pending (retried by the payment worker): 1 (10.00 SDG)" in text
    assert "bank_of_khartoum: 1234 lines, reconciled" in text
    assert "Unresolved issues: 3" in text


def _check_html(html: str) -> None:
    assert 'id="total-created">6<' in html and 'id="total-successful">4<' in html
    assert 'id="success-rate">80.0 %<' in html and 'id="open-issues">3<' in html
    assert ('<td>Zain Cash</td><td>SDG</td><td align="right">3</td><td align="right">300.00'
            '</td><td align="right">3.00</td><td align="right">297.00</td>') in html
    assert ('<td>Visa</td><td>USD</td><td align="right">1</td><td align="right">50.00</td>'
            '<td align="right">1.25</td>') in html
    assert ('<td>Zain Cash</td><td>SDG</td><td align="right">1</td>'
            '<td align="right">40.00</td>') in html


def test_yesterdays_numbers_arrive_in_both_parts_once_across_two_workers(
        ctx: Context, smtp: tuple[int, Sink], worker_env: dict[str, str]) -> None:
    port, sink = smtp
    day = _seed(ctx)
    settings = load({**worker_env, **_mail_settings(ctx, port)})
    other = Context.build(settings)
    sent: list[date] = []

    def deliver(day: date) -> None:
        sent.append(day)
        assert daily_summary.deliver(settings, other.sessions, day) is None

    try:
        # Two payment workers, each running its scheduled tasks: one email for the day.
        for _ in range(2):
            scheduler = Scheduler(other, daily_summary=deliver, summary_hour=0,
                                  intervals={"daily_summary": 0.0})
            assert scheduler.run_due() == ["daily_summary"]
    finally:
        other.close()
    assert sent == [day]
    [(recipients, mail)] = sink.received
    assert recipients == ["finance@hospital.sd", "ops@hospital.sd"]
    assert mail["Subject"] == f"NileCare payments: daily summary for {day}"
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text is not None and html is not None
    _check_text(text.get_content())
    _check_html(html.get_content())


def test_the_cli_prints_with_dry_run_and_sends_without(
        ctx: Context, smtp: tuple[int, Sink], worker_env: dict[str, str]) -> None:
    port, sink = smtp
    day = _seed(ctx)

    def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "service.cli", "summary", *args],
                              env={**os.environ, **worker_env, **env}, capture_output=True,
                              text=True, timeout=60, check=False)

    printed = cli("--date", day.isoformat(), "--dry-run")
    assert printed.returncode == 0, printed.stderr
    _check_text(printed.stdout)
    assert not sink.received
    unset = cli("--date", day.isoformat())  # no SMTP_HOST: says so, sends nothing
    assert unset.returncode == 1 and "SMTP_HOST is not set" in unset.stderr
    sent = cli("--date", day.isoformat(), **_mail_settings(ctx, port))
    assert sent.returncode == 0, sent.stderr
    [(_, mail)] = sink.received
    body = mail.get_body(("plain",))
    assert body is not None
    _check_text(body.get_content())
    assert cli("--date", "31/01/2025", "--dry-run").returncode == 2


def test_without_smtp_or_recipients_or_with_the_flag_off_nothing_is_sent(
        ctx: Context, smtp: tuple[int, Sink], worker_env: dict[str, str]) -> None:
    port, sink = smtp
    day = _seed(ctx)
    cases = {
        "SMTP_HOST is not set": {},
        "SUMMARY_RECIPIENTS is empty": {**_mail_settings(ctx, port), "SUMMARY_RECIPIENTS": ""},
        "FEATURE_DAILY_SUMMARY is false": {**_mail_settings(ctx, port),
                                           "FEATURE_DAILY_SUMMARY": "false"},
    }
    for reason, env in cases.items():
        settings = load({**worker_env, **env})
        assert daily_summary.deliver(settings, ctx.sessions, day) == reason
    assert not sink.received
