"""Stripe-style idempotency decisions, as a pure function of the stored key and the request."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class Decision(StrEnum):
    NEW = "new"  # nobody holds the key: process the request
    REPLAY = "replayed"  # done before with the same body: send the stored response
    MISMATCH = "mismatch"  # the key was used for a different body: 422
    CONFLICT = "conflict"  # another request with this key is still running: 409
    RECOVER = "recover"  # its holder died (lock expired): take it over


@dataclass(frozen=True)
class StoredKey:
    request_hash: str
    completed: bool
    locked_until: datetime
    expires_at: datetime


def canonical_json(value: Any) -> str:
    """One spelling of a parsed JSON value: key order and whitespace do not matter."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fingerprint(method: str, path: str, canonical_body: str) -> str:
    """What a keyed request asked for: its method, path and canonical body."""
    return hashlib.sha256(f"{method} {path}\n{canonical_body}".encode()).hexdigest()


def decide(stored: StoredKey | None, request_hash: str, now: datetime) -> Decision:
    if stored is None or stored.expires_at <= now:
        return Decision.NEW
    if stored.request_hash != request_hash:
        return Decision.MISMATCH
    if stored.completed:
        return Decision.REPLAY
    if stored.locked_until > now:
        return Decision.CONFLICT
    return Decision.RECOVER
