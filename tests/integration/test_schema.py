"""The tables and every trigger, proven on MariaDB and on SQLite alike."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import Engine, insert, inspect, select, text, update
from sqlalchemy.exc import DBAPIError

from service.clock import utcnow
from service.db import migrate
from service.db.models import TABLES, Payment, PaymentAuditLog, PaymentRefund


@pytest.fixture
def engine(migrated_engine: Engine) -> Engine:
    return migrated_engine


def _payment(engine: Engine, amount: str = "100.00", fees: str = "2.50") -> int:
    now = utcnow()
    with engine.begin() as c:
        c.execute(
            insert(Payment).values(
                public_id=f"pay_{now.timestamp()}",
                reference=f"NC-{now.timestamp()}",
                provider_code="visa",
                facility_id="f1",
                patient_id="p1",
                amount=Decimal(amount),
                currency="SDG",
                total_fees=Decimal(fees),
                net_amount=Decimal("0"),
                refunded_amount=Decimal("0"),
                status="confirmed",
                created_by="alice",
                updated_by="alice",
                created_at=now,
                updated_at=now,
                check_attempts=0,
            )
        )
        return int(c.execute(select(Payment.id).order_by(Payment.id.desc())).scalar_one())


def _refund(engine: Engine, payment_id: int, amount: str, status: str = "completed") -> None:
    with engine.begin() as c:
        c.execute(
            insert(PaymentRefund).values(
                public_id=f"re_{utcnow().timestamp()}_{amount}",
                payment_id=payment_id,
                amount=Decimal(amount),
                status=status,
                requested_by="bob",
                created_at=utcnow(),
            )
        )


def test_every_table_at_head(engine: Engine) -> None:
    names = set(inspect(engine).get_table_names()) - {"alembic_version"}
    # The brief's ten, the reconciliation run queue and the live counts.
    assert names == set(TABLES) and len(names) == 12
    assert migrate.current(engine) == migrate.head()
    with engine.connect() as c:
        assert c.execute(text("SELECT COUNT(*) FROM payment_providers")).scalar() == 12


def test_net_amount_is_kept_by_the_database(engine: Engine) -> None:
    pid = _payment(engine, "100.10", "2.50")
    with engine.begin() as c:
        assert c.execute(select(Payment.net_amount).where(Payment.id == pid)).scalar() == Decimal(
            "97.60"
        )
        c.execute(
            update(Payment)
            .where(Payment.id == pid)
            .values(total_fees=Decimal("1.10"), net_amount=Decimal("5"))
        )
        assert c.execute(select(Payment.net_amount).where(Payment.id == pid)).scalar() == Decimal(
            "99.00"
        )


def test_status_changes_are_audited_with_actor(engine: Engine) -> None:
    pid = _payment(engine)
    with engine.begin() as c:
        c.execute(
            update(Payment)
            .where(Payment.id == pid)
            .values(status="refunded", updated_by="carol")
        )
        c.execute(
            update(Payment)
            .where(Payment.id == pid)
            .values(description="no status change", updated_by="dave")
        )
        rows = c.execute(
            select(
                PaymentAuditLog.action,
                PaymentAuditLog.old_value,
                PaymentAuditLog.new_value,
                PaymentAuditLog.actor,
            )
            .where(PaymentAuditLog.entity_id == pid)
            .order_by(PaymentAuditLog.id)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("created", None, "confirmed", "alice"),
        ("status_change", "confirmed", "refunded", "carol"),
    ]


def test_audit_log_is_append_only(engine: Engine) -> None:
    _payment(engine)
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as c:
        c.execute(text("UPDATE payment_audit_log SET actor = 'mallory'"))
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as c:
        c.execute(text("DELETE FROM payment_audit_log"))
    with engine.connect() as c:
        assert (
            c.execute(text("SELECT COUNT(*) FROM payment_audit_log WHERE actor='mallory'")).scalar()
            == 0
        )


def test_refunds_cannot_exceed_the_payment(engine: Engine) -> None:
    pid = _payment(engine, "100.00")
    _refund(engine, pid, "60.10")
    with pytest.raises(DBAPIError, match="exceed"):
        _refund(engine, pid, "39.91")
    _refund(engine, pid, "50.00", status="failed")  # failed refunds do not count
    _refund(engine, pid, "39.90")
    with engine.connect() as c:
        row = c.execute(
            select(Payment.status, Payment.refunded_amount).where(Payment.id == pid)
        ).one()
    assert (row.status, row.refunded_amount) == ("refunded", Decimal("100.00"))


def test_completed_refund_moves_the_payment(engine: Engine) -> None:
    pid = _payment(engine, "80.00")
    _refund(engine, pid, "30.00", status="pending")
    with engine.connect() as c:
        assert c.execute(select(Payment.status).where(Payment.id == pid)).scalar() == "confirmed"
    with engine.begin() as c:
        c.execute(
            update(PaymentRefund)
            .where(PaymentRefund.payment_id == pid)
            .values(status="completed")
        )
    with engine.connect() as c:
        row = c.execute(
            select(Payment.status, Payment.refunded_amount).where(Payment.id == pid)
        ).one()
        actors = (
            c.execute(
                select(PaymentAuditLog.actor).where(
                    PaymentAuditLog.entity_id == pid, PaymentAuditLog.action == "status_change"
                )
            )
            .scalars()
            .all()
        )
    assert (row.status, row.refunded_amount) == ("partially_refunded", Decimal("30.00"))
    assert actors == ["bob"]
