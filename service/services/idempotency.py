"""Idempotency keys kept in the database: the durable record of every keyed POST."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from service.clock import utcnow
from service.db.models import IdempotencyKey
from service.domain.idempotency import Decision, StoredKey, decide

# How long a request may hold its key before another request may assume it died.
LOCK = timedelta(seconds=60)
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class Claim:
    decision: Decision
    key_id: int | None = None
    payment_id: int | None = None
    status: int | None = None
    body: dict[str, Any] | None = None


def claim(
    sessions: sessionmaker[Session], scope: str, key: str, request_hash: str, ttl: timedelta
) -> Claim:
    """Take the key for this request, or say why not (replay, mismatch, conflict)."""
    now = utcnow()
    with sessions.begin() as session:
        row = IdempotencyKey(
            scope=scope,
            key=key,
            request_hash=request_hash,
            state="in_flight",
            locked_until=now + LOCK,
            created_at=now,
            expires_at=now + ttl,
        )
        session.add(row)
        try:
            session.flush()
        except IntegrityError:
            session.rollback()
        else:
            return Claim(Decision.NEW, row.id)
    with sessions.begin() as session:
        found = session.scalars(
            select(IdempotencyKey).where(IdempotencyKey.scope == scope, IdempotencyKey.key == key)
        ).one()
        stored = StoredKey(
            found.request_hash, found.state == "completed", found.locked_until, found.expires_at
        )
        decision = decide(stored, request_hash, now)
        if decision == Decision.REPLAY:
            body = json.loads(found.response_body or "{}")
            return Claim(decision, found.id, found.payment_id, found.response_status, body)
        if decision in (Decision.MISMATCH, Decision.CONFLICT):
            return Claim(decision, found.id)
        # NEW (expired key) or RECOVER: compare-and-set on the old lock, so of several
        # requests arriving together exactly one takes the key over.
        taken = cast(
            CursorResult[Any],
            session.execute(
                update(IdempotencyKey)
                .where(
                    IdempotencyKey.id == found.id,
                    IdempotencyKey.locked_until == found.locked_until,
                    IdempotencyKey.state == found.state,
                )
                .values(
                    request_hash=request_hash,
                    state="in_flight",
                    locked_until=now + LOCK,
                    expires_at=now + ttl,
                    payment_id=found.payment_id if decision == Decision.RECOVER else None,
                )
            ),
        ).rowcount
        if not taken:
            return Claim(Decision.CONFLICT, found.id)
        payment_id = found.payment_id if decision == Decision.RECOVER else None
        return Claim(decision, found.id, payment_id)


def attach_payment(session: Session, key_id: int, payment_id: int) -> None:
    """Record the payment in the same transaction that creates it, so a crash after it
    leaves a key that points at the payment instead of inviting a second one."""
    session.execute(
        update(IdempotencyKey).where(IdempotencyKey.id == key_id).values(payment_id=payment_id)
    )


def complete(session: Session, key_id: int, status: int, body: dict[str, Any]) -> None:
    session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.id == key_id)
        .values(
            state="completed",
            response_status=status,
            response_body=json.dumps(body, separators=(",", ":")),
        )
    )


def release(sessions: sessionmaker[Session], key_id: int) -> None:
    """Give the key back after a request that changed nothing (it failed validation)."""
    with sessions.begin() as session:
        session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.id == key_id, IdempotencyKey.payment_id.is_(None))
            .values(locked_until=utcnow() - LOCK, expires_at=utcnow())
        )


def purge_expired(session: Session) -> int:
    """Delete keys past their retention (the worker runs this on a schedule)."""
    result = cast(
        CursorResult[Any],
        session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at < utcnow())),
    )
    return int(result.rowcount or 0)
