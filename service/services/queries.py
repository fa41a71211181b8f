"""The read side of payments: one payment, a page of them, and the API's view of one."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, select

from service.clock import iso
from service.db.models import Payment
from service.domain.caller import Caller
from service.domain.money import fmt
from service.domain.status import PaymentStatus
from service.domain.views import PaymentPage, PaymentView
from service.errors import Forbidden, NotFound
from service.sealing import mask_phone
from service.services.context import Context

PAYMENTS = cast(Table, Payment.__table__)
# What a view shows, and the id and facility it is looked up and guarded by: a read selects
# these and builds the view from the row (the driver parses every selected column's
# description, and an ORM object costs more than the row it is made from).
SHOWN = [PAYMENTS.c[name] for name in (
    "id", "public_id", "reference", "provider_code", "status", "amount", "currency",
    "total_fees", "net_amount", "refunded_amount", "facility_id", "patient_id", "invoice_id",
    "payer_account", "description", "provider_reference", "failure_reason", "created_at",
    "updated_at", "completed_at")]
# Built once: its cache key is computed once, and a read only binds the id.
SHOWN_BY_PUBLIC_ID = select(*SHOWN).where(PAYMENTS.c.public_id == bindparam("public_id"))
SHOWN_BY_PUBLIC_IDS = select(*SHOWN).where(
    PAYMENTS.c.public_id.in_(bindparam("public_ids", expanding=True)))
# One payment as a read found it: the facility it is guarded by, and its view.
Found = tuple[str, PaymentView]


class PaymentQueries:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def get(self, caller: Caller, public_id: str) -> PaymentView:
        """Another facility's payment is reported as absent (see `owned`)."""
        return self.visible(caller, public_id, self.found([public_id])[0])

    def found(self, public_ids: Sequence[str]) -> list[Found | None]:
        """Many reads in one statement (the gateway's GETs that queued together,
        service/api/batching.py): for each id, its payment's facility and view, or None.
        An id finds the row the database's comparison finds for it: MariaDB's collation
        ignores case and trailing blanks, as the one-payment read does."""
        with self.ctx.reader.connect() as conn:
            rows = conn.execute(SHOWN_BY_PUBLIC_IDS,
                                {"public_ids": sorted(set(public_ids))}).all()
        views = {_folded(row.public_id): (row.facility_id, self.view(row)) for row in rows}
        return [views.get(_folded(public_id)) for public_id in public_ids]

    @staticmethod
    def visible(caller: Caller, public_id: str, found: Found | None) -> PaymentView:
        """Another facility's payment is reported as absent (see `owned`)."""
        if found is None or not caller.may_see(found[0]):
            raise NotFound(f"no payment {public_id!r}", field="payment_id")
        return found[1]

    def list(
        self,
        caller: Caller,
        *,
        status: str | None,
        provider: str | None,
        facility_id: str | None,
        patient_id: str | None,
        created_from: datetime | None,
        created_to: datetime | None,
        limit: int,
        cursor: int | None,
    ) -> PaymentPage:
        query = select(*SHOWN)
        if caller.is_admin:
            if facility_id:
                query = query.where(Payment.facility_id == facility_id)
        else:
            if facility_id and facility_id != caller.facility_id:
                raise Forbidden(
                    "you may only list payments of your own facility", field="facility_id"
                )
            query = query.where(Payment.facility_id == caller.facility_id)
        if status:
            query = query.where(Payment.status == status)
        if provider:
            query = query.where(Payment.provider_code == provider)
        if patient_id:
            query = query.where(Payment.patient_id == patient_id)
        if created_from:
            query = query.where(Payment.created_at >= created_from)
        if created_to:
            query = query.where(Payment.created_at < created_to)
        if cursor is not None:
            query = query.where(Payment.id < cursor)
        query = query.order_by(Payment.id.desc()).limit(limit + 1)
        with self.ctx.reader.connect() as conn:
            rows = list(conn.execute(query))
        more = len(rows) > limit
        rows = rows[:limit]
        return {
            "items": [self.view(p) for p in rows],
            "next_cursor": str(rows[-1].id) if more and rows else None,
        }

    def owned(self, caller: Caller, public_id: str) -> Payment:
        """The caller's payment. Another facility's is reported as absent, not forbidden:
        its existence is none of the caller's business."""
        payment = self._find(public_id)
        if payment is None or not caller.may_see(payment.facility_id):
            raise NotFound(f"no payment {public_id!r}", field="payment_id")
        return payment

    def view_of(self, public_id: str) -> PaymentView:
        row = self._shown(public_id)
        assert row is not None
        return self.view(row)

    def view_by_id(self, payment_id: int) -> PaymentView:
        with self.ctx.sessions() as session:
            payment = session.get(Payment, payment_id)
            assert payment is not None
            return self.view(payment)

    def view(self, p: Payment | Row[Any] | SimpleNamespace) -> PaymentView:
        """The API's view of a payment: an ORM object, a row of SHOWN, or the values a create
        wrote."""
        phone = self.ctx.sealer.open(p.payer_account) if p.payer_account else None
        return {
            "id": p.public_id,
            "reference": p.reference,
            "provider": p.provider_code,
            "status": PaymentStatus(p.status),
            "amount": fmt(p.amount),
            "currency": p.currency,
            "fees": fmt(p.total_fees),
            "net_amount": fmt(p.net_amount),
            "refunded_amount": fmt(p.refunded_amount),
            "facility_id": p.facility_id,
            "patient_id": p.patient_id,
            "invoice_id": p.invoice_id,
            "payer_phone": mask_phone(phone) if phone else None,
            "description": p.description,
            "provider_reference": p.provider_reference,
            "failure_reason": p.failure_reason,
            "created_at": iso(p.created_at),
            "updated_at": iso(p.updated_at),
            "completed_at": iso(p.completed_at) if p.completed_at else None,
        }

    def _shown(self, public_id: str) -> Row[Any] | None:
        """What a view shows, in one statement on an autocommit connection."""
        with self.ctx.reader.connect() as conn:
            return conn.execute(SHOWN_BY_PUBLIC_ID, {"public_id": public_id}).first()

    def _find(self, public_id: str) -> Payment | None:
        """One statement on an autocommit connection."""
        with self.ctx.reader.connect() as conn:
            row = conn.execute(select(PAYMENTS).where(PAYMENTS.c.public_id == public_id)).first()
        return None if row is None else Payment(**row._mapping)


def _folded(public_id: str) -> str:
    return public_id.rstrip(" ").casefold()
