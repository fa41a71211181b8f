"""Bearer JWT (HS256) verification and minting; claims `sub`, `roles`, `facility_id`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt

from service.domain.caller import Caller
from service.errors import Unauthenticated

ALGORITHM = "HS256"


class Verifier:
    """Verifies bearer tokens, remembering the last ones it verified until they expire: a
    caller's next request with the same token costs a dictionary lookup, not an HMAC and a
    JSON decode."""

    def __init__(self, secret: str, size: int = 4096,
                 clock: Callable[[], float] = time.time) -> None:
        self.secret = secret
        self.size = size
        self.clock = clock
        self._known: dict[str, tuple[Caller, float]] = {}

    def caller(self, header: str | None) -> Caller:
        if header:
            found = self._known.get(header)
            if found is not None and found[1] > self.clock():
                return found[0]
        caller, expires = _verify(header, self.secret)
        if len(self._known) >= self.size:
            self._known.clear()
        self._known[header or ""] = (caller, expires)
        return caller


def caller_from_header(header: str | None, secret: str) -> Caller:
    return _verify(header, secret)[0]


def _verify(header: str | None, secret: str) -> tuple[Caller, float]:
    if not header:
        raise Unauthenticated("send Authorization: Bearer <token>", field="Authorization")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must be 'Bearer <token>'",
                              field="Authorization")
    try:
        claims: dict[str, Any] = jwt.decode(
            token.strip(), secret, algorithms=[ALGORITHM],
            options={"require": ["sub", "exp"]}, leeway=30,
        )
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("the token has expired", field="Authorization") from None
    except jwt.PyJWTError as exc:
        raise Unauthenticated(f"the token is not valid: {exc}", field="Authorization") from None
    roles = claims.get("roles", [])
    if isinstance(roles, str):
        roles = [roles]
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise Unauthenticated("the token's roles claim must be a list of strings",
                              field="Authorization")
    facility = claims.get("facility_id")
    if facility is not None and not isinstance(facility, str):
        raise Unauthenticated("the token's facility_id claim must be a string",
                              field="Authorization")
    caller = Caller(subject=str(claims["sub"]), roles=frozenset(roles), facility_id=facility)
    return caller, float(claims["exp"])


def mint(secret: str, subject: str, roles: list[str], facility_id: str | None,
         ttl_seconds: int = 8 * 3600) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {"sub": subject, "roles": roles, "iat": now,
                              "exp": now + ttl_seconds}
    if facility_id is not None:
        claims["facility_id"] = facility_id
    return jwt.encode(claims, secret, algorithm=ALGORITHM)
