"""The payment work queue in the database: claim due payments under a lease, renew the
lease while they are worked on, release them.

MySQL/MariaDB pick candidates with `SELECT … FOR UPDATE SKIP LOCKED`, so concurrent workers
walk past each other's rows instead of queueing on them. The claim itself is a conditional
UPDATE (only rows whose lease is free), which is also what makes it safe on SQLite, where
there is no SKIP LOCKED and the database-wide write lock serialises claims. Every claim
writes a fresh lease token; renewing, finishing and applying a provider's answer all name
it in their UPDATE, so a worker whose lease passed to another changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from service.db.models import Payment
from service.db.results import rowcount
from service.domain.catalog import BY_CODE
from service.domain.status import PaymentStatus

S = PaymentStatus
ELECTRONIC = sorted(code for code, spec in BY_CODE.items() if spec.electronic)


@dataclass(frozen=True)
class Claimed:
    id: int
    provider_code: str
    reference: str
    status: PaymentStatus
    check_attempts: int
    lease_expires_at: datetime
    token: str


def _due(now: datetime) -> ColumnElement[bool]:
    lease_free = or_(Payment.lease_expires_at.is_(None), Payment.lease_expires_at < now)
    # Manual payments (cash, cheque, transfers) in awaiting_verification wait for a person
    # or a statement match, never for a provider poll.
    return and_(
        Payment.status.in_([S.PROCESSING.value, S.UNKNOWN.value,
                            S.AWAITING_VERIFICATION.value]),
        Payment.provider_code.in_(ELECTRONIC),
        Payment.next_check_at.is_not(None),
        Payment.next_check_at <= now,
        lease_free,
    )


def claim(sessions: sessionmaker[Session], owner: str, limit: int,
          lease: timedelta, now: datetime) -> list[Claimed]:
    """Lease up to `limit` payments due at `now` to `owner`; each is then this worker's
    alone."""
    expires = now + lease
    token = uuid.uuid4().hex
    with sessions.begin() as session:
        query = (select(Payment.id).where(_due(now)).order_by(Payment.next_check_at)
                 .limit(limit))
        if session.get_bind().dialect.name != "sqlite":
            query = query.with_for_update(skip_locked=True)
        ids = list(session.scalars(query))
        if not ids:
            return []
        session.execute(
            update(Payment)
            .where(Payment.id.in_(ids), _due(now))
            .values(lease_owner=owner, lease_expires_at=expires, lease_token=token)
            .execution_options(synchronize_session=False)
        )
        rows = session.execute(
            select(Payment.id, Payment.provider_code, Payment.reference, Payment.status,
                   Payment.check_attempts)
            .where(Payment.id.in_(ids), Payment.lease_token == token)
            .order_by(Payment.next_check_at)
        ).all()
    return [Claimed(r.id, r.provider_code, r.reference, S(r.status), r.check_attempts, expires,
                    token) for r in rows]


def renew(sessions: sessionmaker[Session], ids: Sequence[int], token: str,
          lease: timedelta, now: datetime) -> int:
    """Extend the lease on those of `ids` still held under `token`; how many are."""
    if not ids:
        return 0
    with sessions.begin() as session:
        return rowcount(session.execute(
            update(Payment)
            .where(Payment.id.in_(list(ids)), Payment.lease_token == token)
            .values(lease_expires_at=now + lease)
            .execution_options(synchronize_session=False)))


def finish(sessions: sessionmaker[Session], payment_id: int, token: str,
           next_check_at: datetime | None) -> bool:
    """Count the check, schedule the next one (None: the payment is settled) and free the
    lease. False when the lease had already passed to another worker."""
    with sessions.begin() as session:
        done = rowcount(session.execute(
            update(Payment)
            .where(Payment.id == payment_id, Payment.lease_token == token)
            .values(lease_owner=None, lease_expires_at=None, lease_token=None,
                    check_attempts=Payment.check_attempts + 1,
                    next_check_at=next_check_at)
            .execution_options(synchronize_session=False)
        ))
    return bool(done)


def release(sessions: sessionmaker[Session], ids: Sequence[int], token: str) -> int:
    """Give back leases on payments not yet worked on (a graceful stop), due at once."""
    if not ids:
        return 0
    with sessions.begin() as session:
        count = rowcount(session.execute(
            update(Payment)
            .where(Payment.id.in_(list(ids)), Payment.lease_token == token)
            .values(lease_owner=None, lease_expires_at=None, lease_token=None)
            .execution_options(synchronize_session=False)
        ))
    return count

