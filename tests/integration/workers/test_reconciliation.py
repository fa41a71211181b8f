"""Reconciliation on real MariaDB: a generated 10,000-line statement with one seeded
discrepancy of each type finds exactly those."""

from __future__ import annotations

import csv
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, insert, select

from service.clock import utcnow
from service.db.models import BankStatement, Payment, PaymentReconciliation
from service.services.context import Context
from service.workers import reconciliation

LINES = 10_000


def _seed_payments(ctx: Context, day: date, count: int) -> list[dict[str, object]]:
    now = utcnow()
    booked = datetime.combine(day, datetime.min.time()) + timedelta(hours=10)
    rows: list[dict[str, object]] = [{
        "public_id": f"pay_rec_{n}", "reference": f"NC-REC-{n:06d}",
        "provider_code": "bank_transfer", "facility_id": "fac-1", "patient_id": f"p-{n}",
        "amount": Decimal(1000 + n) + Decimal("0.25"), "currency": "SDG",
        "total_fees": Decimal("0"), "net_amount": Decimal("0"), "refunded_amount": Decimal("0"),
        "status": "awaiting_verification", "created_by": "t", "updated_by": "t",
        "created_at": booked, "updated_at": now, "check_attempts": 0,
    } for n in range(count)]
    with ctx.sessions.begin() as session:
        session.execute(insert(Payment), rows)
    return rows


def _ids(ctx: Context, references: list[str]) -> dict[str, int]:
    with ctx.sessions() as session:
        rows = session.execute(select(Payment.reference, Payment.id)
                               .where(Payment.reference.in_(references)))
        return {row.reference: row.id for row in rows}


def test_a_large_statement_yields_exactly_the_seeded_discrepancies(
        ctx: Context, tmp_path: Path) -> None:
    day = date.today() - timedelta(days=5)
    # LINES payments; five are tampered with on the statement, one never appears on it.
    payments = _seed_payments(ctx, day, LINES)
    ref = [str(p["reference"]) for p in payments]
    statement_dir = tmp_path / "statements"
    (statement_dir / "bank_of_khartoum").mkdir(parents=True)
    path = statement_dir / "bank_of_khartoum" / f"{day}.csv"
    seeded = {"amount": ref[10], "unrecorded": ref[20], "timing": ref[30],
              "currency": ref[40], "duplicate": ref[50], "by_amount": ref[60]}
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["value_date", "amount", "currency", "reference", "description"])
        for p in payments:
            reference, amount = str(p["reference"]), str(p["amount"])
            value_date, currency = day + timedelta(days=1), "SDG"
            if reference == seeded["unrecorded"]:
                continue
            if reference == seeded["amount"]:
                amount = str(Decimal(amount) - 100)
            if reference == seeded["timing"]:
                value_date = day + timedelta(days=5)
            if reference == seeded["currency"]:
                currency = "USD"
            if reference == seeded["by_amount"]:
                reference = ""  # the bank lost the reference: matched by amount and date
            out.writerow([value_date, amount, currency, reference, "transfer"])
            if reference == seeded["duplicate"]:
                out.writerow([value_date, amount, currency, reference, "transfer again"])
        out.writerow([day, "999999.99", "SDG", "UNKNOWN-REF-1", "not ours"])  # missing

    seen: list[tuple[int, int]] = []
    result = reconciliation.run(ctx.sessions, statement_dir,
                                progress=lambda done, total: seen.append((done, total)))
    assert result.lines == LINES + 1
    assert seen[-1] == (LINES + 1, LINES + 1)
    ids = _ids(ctx, list(seeded.values()))
    with ctx.sessions() as session:
        issues = {(r.issue_type, r.payment_id) for r in session.scalars(
            select(PaymentReconciliation).where(PaymentReconciliation.run_id == result.run_id,
                                                PaymentReconciliation.result == "issue"))}
        confirmed = session.scalar(select(func.count()).select_from(Payment)
                                   .where(Payment.status == "confirmed"))
    assert issues == {
        ("amount", ids[seeded["amount"]]), ("unrecorded", ids[seeded["unrecorded"]]),
        ("timing", ids[seeded["timing"]]), ("currency", ids[seeded["currency"]]),
        ("duplicate", ids[seeded["duplicate"]]), ("missing", None),
    }
    assert result.issues == {t: 1 for t in
                             ("amount", "unrecorded", "timing", "currency", "duplicate",
                              "missing")}
    # Everything cleanly matched is now confirmed (the line matched by amount, and the first
    # line of the duplicated pair); amount, timing, currency and unrecorded ones wait.
    assert confirmed == LINES - 4
    with ctx.sessions() as session:
        summary = reconciliation.summary(session, result.run_id)
    assert summary is not None and summary["open_issues"] == 6

    again = reconciliation.run(ctx.sessions, statement_dir)  # same file: nothing new
    assert again.lines == 0
    with ctx.sessions() as session:
        assert session.scalar(select(func.count()).select_from(BankStatement)) == 1
