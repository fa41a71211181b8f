"""Idempotency keys in the database: the one implementation every unsafe POST uses."""

# A keyed request claims its key (a unique row), does its work, and stores its response. The work
# links the key to the resource it creates or changes in the same transaction as that change
# (`Attach`), so if its gateway dies afterwards, a retry once the key's lock has passed answers
# with that resource instead of doing the work again.

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import structlog
from prometheus_client import Counter
from sqlalchemy import (
    Connection,
    CursorResult,
    Table,
    bindparam,
    case,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.dml import UpdateBase

from service.clock import Clock
from service.db.availability import is_unavailable
from service.db.models import IdempotencyKey
from service.db.results import rowcount
from service.domain.idempotency import Decision, StoredKey, decide, fingerprint
from service.errors import Conflict, InvalidInput

MAX_KEY_LENGTH = 255
KEYS = cast(Table, IdempotencyKey.__table__)
# The statements of a keyed create, built once: each request binds its values and reuses
# their compiled form (built per request, their cache keys cost more than running them).
TAKE = insert(KEYS)
LINK = update(KEYS).where(KEYS.c.id == bindparam("key_id")).values(
    resource_id=bindparam("resource"))
COMPLETE = update(KEYS).where(KEYS.c.id == bindparam("key_id")).values(
    state="completed", response_status=bindparam("status"), response_body=bindparam("body"))
log = structlog.get_logger()


@dataclass(frozen=True)
class Outcome:
    """An HTTP-shaped result, so a keyed request can store and replay it verbatim."""

    status: int
    body: Mapping[str, Any]


@dataclass(frozen=True)
class Keyed:
    """A request that carries an Idempotency-Key: whose key, the key, what was asked."""

    scope: str
    key: str
    fingerprint: str

    @classmethod
    def of(cls, subject: str, key: str, method: str, path: str, canonical_body: str) -> Keyed:
        if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
            raise InvalidInput(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII "
                               "characters", field="Idempotency-Key")
        # Prefixed so a caller's keys never meet the workers' task claims in the same table.
        return cls(f"caller:{subject}", key, fingerprint(method, path, canonical_body))


class KeyTaken(Exception):
    """Another request holds this Idempotency-Key (raised where an operation takes it)."""


Executor = Session | Connection


@dataclass
class Hold:
    """One request's hold on its Idempotency-Key, handed to the operation.

    The operation links the key to what it creates or changes in the same transaction as the
    change (`hold(conn, public_id)`). An operation run `inline` also takes the key in its own
    first transaction and completes it in its last, so the key costs no transaction of its
    own (the payment create: two transactions in all)."""

    owner: Idempotency | None
    keyed: Keyed | None
    key_id: int | None = None
    completed: bool = False

    def __call__(self, conn: Executor, resource_id: str) -> None:
        statement = self.claim(resource_id)
        if statement is None:
            return
        claim, values = statement
        if claim is LINK:
            conn.execute(claim, values)
            return
        try:
            result = conn.execute(claim, values)
        except IntegrityError:
            raise KeyTaken(self.keyed.key) from None  # type: ignore[union-attr]
        key = cast(CursorResult[Any], result).inserted_primary_key
        self.taken(int(key[0]) if key else None)

    def claim(self, resource_id: str) -> tuple[UpdateBase, dict[str, Any]] | None:
        """The statement that takes the key for `resource_id` (a unique row: a duplicate
        means another request has it), or links the key this hold already has; None
        without a key. `taken` is told what it did."""
        if self.keyed is None or self.owner is None:
            return None
        if self.key_id is not None:
            return LINK, {"key_id": self.key_id, "resource": resource_id}
        now = self.owner.clock.now()
        return TAKE, {
            "scope": self.keyed.scope, "key": self.keyed.key,
            "request_hash": self.keyed.fingerprint, "state": "in_flight",
            "resource_id": resource_id, "locked_until": now + self.owner.lock,
            "created_at": now, "expires_at": now + self.owner.ttl}

    def taken(self, key_id: int | None) -> None:
        """The claim's statement ran; `key_id` is the row a TAKE inserted."""
        if self.key_id is not None or self.owner is None:
            return  # a LINK: the key was held already
        assert key_id is not None
        self.key_id = key_id
        self.owner.decisions.labels(Decision.NEW.value).inc()

    def completion(self, outcome: Outcome) -> tuple[UpdateBase, dict[str, Any]] | None:
        """The statement that stores the response, in the caller's transaction; None
        without a held key. `completed` is to be set once it committed."""
        if self.key_id is None:
            return None
        return COMPLETE, _completion(self.key_id, outcome)

    def complete(self, conn: Executor, outcome: Outcome) -> None:
        """Store the response in the caller's transaction."""
        statement = self.completion(outcome)
        if statement is None:
            return
        complete, values = statement
        conn.execute(complete, values)
        self.completed = True


# Kept for the operations that only link the key: what they receive is a Hold.
Attach = Hold
Operation = Callable[[Hold], Outcome]
Recover = Callable[[str], Outcome]


@dataclass(frozen=True)
class Claim:
    decision: Decision
    key_id: int
    resource_id: str | None = None
    status: int | None = None
    body: dict[str, Any] | None = None
    retry_after: int = 1


class Idempotency:
    def __init__(self, sessions: sessionmaker[Session], decisions: Counter, ttl: timedelta,
                 lock: timedelta, clock: Clock) -> None:
        self.sessions = sessions
        self.decisions = decisions
        self.ttl = ttl
        self.lock = lock
        self.clock = clock

    def run(self, keyed: Keyed | None, operation: Operation, recover: Recover, *,
            inline: bool = False) -> Outcome:
        """Do `operation` once per key: replay, refuse, or recover as the stored key says.
        `inline`: the operation takes the key itself, in its first transaction."""
        if keyed is None:
            return operation(Hold(None, None))
        if inline:
            hold = Hold(self, keyed)
            try:
                return self._do(hold, lambda: operation(hold))
            except KeyTaken:
                pass  # another request has used the key: decide as the stored key says
        claim = self.claim(keyed)
        self.decisions.labels(claim.decision.value).inc()
        if claim.decision == Decision.REPLAY:
            assert claim.status is not None and claim.body is not None
            return Outcome(claim.status, claim.body)
        if claim.decision == Decision.MISMATCH:
            raise InvalidInput("this Idempotency-Key was already used with a different request",
                               field="Idempotency-Key")
        if claim.decision == Decision.CONFLICT:
            raise Conflict("a request with this Idempotency-Key is still in progress; retry "
                           "later", field="Idempotency-Key", retry_after=claim.retry_after)
        held = Hold(self, keyed, claim.key_id)
        resource = claim.resource_id
        if resource is not None:
            # Its earlier holder made the change, then died: answer with what it made.
            return self._do(held, lambda: recover(resource))
        return self._do(held, lambda: operation(held))

    def _do(self, hold: Hold, work: Callable[[], Outcome]) -> Outcome:
        try:
            outcome = work()
        except KeyTaken:
            raise
        except Exception as exc:
            if hold.key_id is not None and not is_unavailable(exc):
                # The request failed for a reason of its own: free the key at once. Whether
                # anything changed is the database's to say (the attaching transaction's row
                # lock makes it so), not what this process heard back from its COMMIT.
                self._free(hold.key_id)
            # A database that failed mid-request may have committed it: the key stays locked
            # until IDEMPOTENCY_LOCK_SECONDS pass, then a retry recovers what was made.
            raise
        if hold.key_id is not None and not hold.completed:
            self.complete(hold.key_id, outcome)
        return outcome

    def claim(self, keyed: Keyed) -> Claim:
        """Take the key for this request, or say why not (replay, mismatch, conflict)."""
        now = self.clock.now()
        with self.sessions.begin() as session:
            row = IdempotencyKey(scope=keyed.scope, key=keyed.key,
                                 request_hash=keyed.fingerprint, state="in_flight",
                                 locked_until=now + self.lock, created_at=now,
                                 expires_at=now + self.ttl)
            session.add(row)
            try:
                session.flush()
            except IntegrityError:
                session.rollback()
            else:
                return Claim(Decision.NEW, row.id)
        with self.sessions.begin() as session:
            found = session.scalars(select(IdempotencyKey).where(
                IdempotencyKey.scope == keyed.scope, IdempotencyKey.key == keyed.key)).first()
            if found is None:  # purged between our insert and this read: it is free again
                return Claim(Decision.CONFLICT, 0, retry_after=1)
            stored = StoredKey(found.request_hash, found.state == "completed",
                               found.locked_until, found.expires_at)
            decision = decide(stored, keyed.fingerprint, now)
            if decision == Decision.REPLAY:
                body = json.loads(found.response_body or "{}")
                return Claim(decision, found.id, found.resource_id, found.response_status, body)
            if decision == Decision.MISMATCH:
                return Claim(decision, found.id)
            if decision == Decision.CONFLICT:
                wait = (found.locked_until - now).total_seconds()
                return Claim(decision, found.id, retry_after=max(int(wait) + 1, 1))
            # NEW (an expired key) or RECOVER: compare-and-set on the old lock, so of several
            # requests arriving together exactly one takes the key over.
            resource = found.resource_id if decision == Decision.RECOVER else None
            taken = rowcount(session.execute(
                update(IdempotencyKey)
                .where(IdempotencyKey.id == found.id,
                       IdempotencyKey.locked_until == found.locked_until,
                       IdempotencyKey.state == found.state)
                .values(request_hash=keyed.fingerprint, state="in_flight",
                        locked_until=now + self.lock, expires_at=now + self.ttl,
                        resource_id=resource)))
            if not taken:
                return Claim(Decision.CONFLICT, found.id, retry_after=1)
            return Claim(decision, found.id, resource)

    def complete(self, key_id: int, outcome: Outcome) -> None:
        with self.sessions.begin() as session:
            session.execute(COMPLETE, _completion(key_id, outcome))

    def _free(self, key_id: int) -> None:
        """Unlock the key at once; a key whose request changed nothing is also forgotten, so
        it may carry another request."""
        now = self.clock.now()
        try:
            with self.sessions.begin() as session:
                session.execute(update(IdempotencyKey).where(IdempotencyKey.id == key_id).values(
                    locked_until=now - self.lock,
                    expires_at=case((IdempotencyKey.resource_id.is_(None), now),
                                    else_=IdempotencyKey.expires_at)))
        except Exception:  # noqa: BLE001 - the key then waits out its lock instead
            log.warning("idempotency.unlock_failed", key_id=key_id)


def _completion(key_id: int, outcome: Outcome) -> dict[str, Any]:
    return {"key_id": key_id, "status": outcome.status,
            "body": json.dumps(outcome.body, separators=(",", ":"))}


def purge_expired(session: Session, now: datetime) -> int:
    """Delete keys past their retention at `now` (the worker runs this on a schedule)."""
    result = session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at < now))
    return rowcount(result)

