"""Creating a payment: two short transactions around the provider call."""

# The first records the intent: the Idempotency-Key, the invoice check and the payment itself,
# already `processing` and due for the worker, so a gateway that dies during the call leaves
# nothing the worker will not finish (a charge that never reached the provider is `failed`
# at the worker's first check: the provider does not know it). The second applies the reply:
# the attempt, the payment's new status (the audit trigger writes its history) and the key's
# stored response. Each is one connection checkout in SQLAlchemy Core, and the response is
# built from what was written instead of read back. On MySQL each goes in two round trips
# (service/db/pipeline.py): its statements together, the last ones with the COMMIT.

from __future__ import annotations

import time
import uuid
from datetime import datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Row,
    Table,
    Update,
    bindparam,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.dml import UpdateBase

from service.db import pipeline
from service.db.models import Payment, PaymentAttempt
from service.db.results import rowcount
from service.domain.caller import Caller
from service.domain.catalog import ProviderSpec, normalise_phone
from service.domain.status import OPEN, SUCCESSFUL, UNSUCCESSFUL, PaymentStatus, advance
from service.domain.views import PaymentView
from service.errors import Conflict, ProviderFailure
from service.providers.contract import (
    ChargeRequest,
    ProviderError,
    ProviderIntegrityError,
    ProviderRefused,
    ProviderReply,
)
from service.providers.outcome import classify
from service.services.idempotency import COMPLETE, TAKE, Hold, Keyed, KeyTaken, Outcome
from service.services.payments import BLOCKS_NEW_CHARGE, NewPayment, PaymentService
from service.services.transitions import FIRST_CHECK, reply_facts

S = PaymentStatus
PAYMENTS = cast(Table, Payment.__table__)
ATTEMPTS = cast(Table, PaymentAttempt.__table__)
# Built once; a create binds its values (built per request, the statements' cache keys
# cost more than running them).
NEW_PAYMENT = insert(PAYMENTS)
NEW_ATTEMPT = insert(ATTEMPTS)
INVOICE_BLOCKED = (
    select(PAYMENTS.c.public_id, PAYMENTS.c.status)
    .where(PAYMENTS.c.facility_id == bindparam("facility"),
           PAYMENTS.c.invoice_id == bindparam("invoice"),
           PAYMENTS.c.status.in_([s.value for s in BLOCKS_NEW_CHARGE]))
    .limit(1).with_for_update())
_APPLY: dict[tuple[str, ...], Update] = {}
# The reply's transaction sent together: whether the payment moved, for the statement that
# stores the key's response (a session variable of the connection, set before each use).
MOVED = text("SET @nilecare_moved = ROW_COUNT()")
COMPLETE_IF_MOVED = COMPLETE.where(text("@nilecare_moved = 1"))

NOT_YET = dict.fromkeys(("provider_reference", "failure_reason", "completed_at"))


def _apply_statement(columns: tuple[str, ...]) -> Update:
    """UPDATE the payment's `columns` while it is still processing: one statement per set
    of columns a reply moves (a handful), built the first time it is needed."""
    found = _APPLY.get(columns)
    if found is None:
        found = _APPLY[columns] = (
            update(PAYMENTS)
            .where(PAYMENTS.c.id == bindparam("payment"),
                   PAYMENTS.c.status == S.PROCESSING.value)
            .values({name: bindparam(f"new_{name}") for name in columns}))
    return found


class Creation:
    def __init__(self, payments: PaymentService) -> None:
        self.payments = payments
        self.ctx = payments.ctx

    def create(self, caller: Caller, new: NewPayment, keyed: Keyed | None) -> Outcome:
        spec = self.payments.check(caller, new)
        return self.payments.idempotency.run(
            keyed, lambda hold: self._create(caller, new, spec, hold),
            lambda public_id: Outcome(201, self.payments.queries.view_of(public_id)), inline=True)

    def _create(self, caller: Caller, new: NewPayment, spec: ProviderSpec,
                hold: Hold) -> Outcome:
        adapter = self.ctx.providers.adapter(spec.code) if spec.electronic else None
        now = self.ctx.clock.now()
        phone = normalise_phone(new.payer_phone) if new.payer_phone else None
        fees = spec.fees.fee(new.amount)
        row: dict[str, Any] = {
            "public_id": f"pay_{uuid.uuid4().hex}",
            "reference": f"NC-{uuid.uuid4().hex[:20].upper()}",
            "provider_code": spec.code, "facility_id": new.facility_id,
            "patient_id": new.patient_id, "invoice_id": new.invoice_id,
            "amount": new.amount, "currency": new.currency, "total_fees": fees,
            "net_amount": new.amount - fees, "refunded_amount": Decimal("0"),
            "status": (S.PROCESSING if adapter else S.AWAITING_VERIFICATION).value,
            "payer_account": self.ctx.sealer.seal(phone) if phone else None,
            "description": new.description, "created_by": caller.subject,
            "updated_by": caller.subject, "created_at": now, "updated_at": now,
            "check_attempts": 0,
            # Due for the worker only once the call has surely ended (PROVIDER_TIMEOUT).
            "next_check_at": now + FIRST_CHECK if adapter else None,
        }
        with self.ctx.engine.connect() as conn:
            if pipeline.supported(conn):
                outcome = self._record_pipelined(conn, row, new, hold, cash=adapter is None)
            else:
                with conn.begin():
                    outcome = self._record(conn, row, new, hold, cash=adapter is None)
        self.ctx.metrics.payments_created.labels(spec.code, new.currency).inc()
        if adapter is None:
            assert outcome is not None
            return outcome
        request = ChargeRequest(
            row["reference"], new.amount, new.currency, phone, new.description,
            f"{self.ctx.settings.gateway_public_url.rstrip('/')}/api/v1/webhooks/{spec.code}")
        started = time.perf_counter()
        try:
            reply: ProviderReply | None = adapter.initiate(request)
            error: ProviderError | None = None
        except ProviderError as exc:
            reply, error = None, exc
        return self._apply(row, spec, hold, reply, error, time.perf_counter() - started)

    def _record(self, conn: Connection, row: dict[str, Any], new: NewPayment, hold: Hold, *,
                cash: bool) -> Outcome | None:
        """The first transaction, a statement at a time: the key, the invoice check, the
        payment; a cash payment's response is stored with them (its create ends here)."""
        hold(conn, row["public_id"])
        if new.invoice_id is not None:
            _refuse_if_blocked(conn.execute(INVOICE_BLOCKED, _invoice(new)).first(), new)
        result = conn.execute(NEW_PAYMENT, row)
        key = result.inserted_primary_key
        assert key is not None
        row["id"] = int(key[0])
        if not cash:
            return None
        outcome = Outcome(201, self._view(row))
        hold.complete(conn, outcome)
        return outcome

    def _record_pipelined(self, conn: Connection, row: dict[str, Any], new: NewPayment,
                          hold: Hold, *, cash: bool) -> Outcome | None:
        """`_record`'s statements in two round trips: the key, the invoice check and the
        payment; then the COMMIT (with a cash payment's response, stored in the key's row
        the first one wrote). A refused invoice rolls back the payment written after its
        check."""
        claim = hold.claim(row["public_id"])
        taking = claim is not None and claim[0] is TAKE
        first: list[pipeline.Statement] = []
        if claim is not None:
            statement, values = claim
            first.append((pipeline.compiled(conn, statement, tuple(values) if taking else None),
                          values))
        checked = new.invoice_id is not None
        if checked:
            first.append((pipeline.compiled(conn, INVOICE_BLOCKED), _invoice(new)))
        first.append((pipeline.compiled(conn, NEW_PAYMENT, tuple(row)), row))
        with pipeline.Transaction(conn) as transaction:
            try:
                steps = transaction.send(first)
            except pipeline.PipelineFailed as failed:  # rolled back
                if failed.index == 0 and taking and isinstance(failed.error, IntegrityError):
                    raise KeyTaken(hold.keyed.key if hold.keyed else "") from None
                raise failed.error from None
            if claim is not None:
                hold.taken(steps[0].lastrowid)
            if checked and steps[-2].rows:
                public_id, status = steps[-2].rows[0]
                _refuse_if_blocked(SimpleNamespace(public_id=public_id, status=status), new)
            row["id"] = steps[-1].lastrowid
            outcome = Outcome(201, self._view(row)) if cash else None
            completion = hold.completion(outcome) if outcome is not None else None
            try:
                transaction.commit([(pipeline.compiled(conn, completion[0]), completion[1])]
                                   if completion is not None else [])
            except pipeline.PipelineFailed as failed:
                raise failed.error from None
            hold.completed = completion is not None
            return outcome

    def _apply(self, row: dict[str, Any], spec: ProviderSpec, hold: Hold,
               reply: ProviderReply | None, error: ProviderError | None,
               elapsed: float) -> Outcome:
        now = self.ctx.clock.now()
        actor, reported, fields = _effect(reply, error, now)
        target = advance(S.PROCESSING, reported)
        values: dict[str, Any] = {"updated_by": actor, "updated_at": now, **fields}
        if target is not None:
            values["status"] = target.value
            if target in SUCCESSFUL:
                # A timeout before the provider confirmed is not a reason the payment failed.
                values.setdefault("failure_reason", None)
            if target not in OPEN:
                values["next_check_at"] = None
                values["completed_at"] = now
        outcome = classify(reply, error)
        integrity = isinstance(error, ProviderIntegrityError)
        attempt = {
            "payment_id": row["id"], "provider_code": spec.code, "operation": "initiate",
            "request_id": str(uuid.uuid4()), "outcome": outcome.value,
            "provider_status": reply.status.value if reply else None,
            "http_status": reply.http_status if reply else None,
            "latency_ms": int(elapsed * 1000), "error": str(error)[:255] if error else None,
            "created_at": now}
        # Still processing: nobody (a webhook, the worker) moved it during the call.
        columns = tuple(sorted(values))
        move = (_apply_statement(columns), {
            "payment": row["id"], **{f"new_{name}": values[name] for name in columns}})
        answer = Outcome(201, self._view({**row, **values}))  # the answer if it moved
        # The key keeps this answer only if the payment moved (and the reply was sound).
        complete = None if integrity else hold.completion(answer)
        with self.ctx.engine.connect() as conn:
            if pipeline.supported(conn):
                applied = _reply_pipelined(conn, attempt, move, complete)
            else:
                with conn.begin():
                    conn.execute(NEW_ATTEMPT, attempt)
                    applied = rowcount(conn.execute(*move))
                    if applied and complete is not None:
                        conn.execute(*complete)
        if applied:
            row.update(values)
            hold.completed = complete is not None
        metrics = self.ctx.metrics
        metrics.provider_requests.labels(spec.code, "initiate", outcome.value).inc()
        metrics.provider_duration.labels(spec.code, "initiate").observe(elapsed)
        if not applied:
            # Someone moved it first: let the state machine decide, under the row's lock.
            if reply is not None:
                self.payments.transitions.apply_reply(row["id"], reply, actor)
            else:
                self.payments.transitions.move(row["id"], reported, actor, **fields)
            answer = Outcome(201, self.payments.queries.view_of(row["public_id"]))
        elif target is not None and (target in SUCCESSFUL | UNSUCCESSFUL):
            metrics.payments_completed.labels(spec.code, target.value).inc()
            metrics.processing_duration.labels(spec.code).observe(
                max((now - row["created_at"]).total_seconds(), 0.0))
        if integrity:
            raise ProviderFailure(
                f"{spec.code} answered about a different amount or currency; the payment is "
                "held as unknown for review", field="provider", payment=answer.body)
        return answer

    def _view(self, row: dict[str, Any]) -> PaymentView:
        # Columns a create leaves NULL until a reply sets them.
        return self.payments.queries.view(SimpleNamespace(**{**NOT_YET, **row}))


def _reply_pipelined(conn: Connection, attempt: dict[str, Any],
                     move: tuple[Update, dict[str, Any]],
                     complete: tuple[UpdateBase, dict[str, Any]] | None) -> int:
    """The second transaction in two round trips: the attempt, the move and the key's
    response (stored only if the payment moved: the move's count, kept in a session
    variable for the next statement), then the COMMIT. How many moved (0 or 1)."""
    batch = [(pipeline.compiled(conn, NEW_ATTEMPT, tuple(attempt)), attempt),
             (pipeline.compiled(conn, move[0]), move[1])]
    if complete is not None:
        assert complete[0] is COMPLETE
        batch += [(pipeline.compiled(conn, MOVED), {}),
                  (pipeline.compiled(conn, COMPLETE_IF_MOVED), complete[1])]
    with pipeline.Transaction(conn) as transaction:
        try:
            moved = transaction.send(batch)[1].rowcount
            transaction.commit()
        except pipeline.PipelineFailed as failed:  # rolled back
            raise failed.error from None
    return moved


def _invoice(new: NewPayment) -> dict[str, Any]:
    return {"facility": new.facility_id, "invoice": new.invoice_id}


def _refuse_if_blocked(blocking: Row[Any] | SimpleNamespace | None, new: NewPayment) -> None:
    """A payment of the invoice that is still open or settled blocks a new charge."""
    if blocking is not None:
        raise Conflict(
            f"invoice {new.invoice_id} already has payment {blocking.public_id} in status "
            f"{blocking.status}; resolve it before charging again",
            field="invoice_id", payment_id=blocking.public_id)


def _effect(reply: ProviderReply | None, error: ProviderError | None,
            now: datetime) -> tuple[str, PaymentStatus, dict[str, Any]]:
    """Who moves the payment, to what, with which facts."""
    if reply is not None:
        return "provider", reply.status, reply_facts(reply, now)
    if isinstance(error, ProviderRefused):
        return "provider", S.FAILED, {"failure_reason": str(error)[:255]}
    # Timeout, transport error or a reply we cannot trust: the money may or may not have
    # moved. `unknown` is resolved by asking the provider, never by guessing.
    return "system", S.UNKNOWN, {"failure_reason": str(error)[:255] if error else None,
                                 "next_check_at": now + FIRST_CHECK}
