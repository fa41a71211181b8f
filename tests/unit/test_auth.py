"""Bearer tokens: verified once, remembered only until they expire (no I/O)."""

from __future__ import annotations

import time

import pytest

from service.api import auth
from service.api.auth import Verifier, mint
from service.domain.caller import Caller
from service.errors import Unauthenticated

SECRET = "s" * 40


def test_a_token_is_verified_once_and_again_after_it_expires(
        monkeypatch: pytest.MonkeyPatch) -> None:
    verified: list[str | None] = []
    real = auth._verify

    def counting(header: str | None, secret: str) -> tuple[Caller, float]:
        verified.append(header)
        return real(header, secret)

    monkeypatch.setattr(auth, "_verify", counting)
    token = mint(SECRET, "u1", ["accountant"], "fac-1", ttl_seconds=60)
    now = [time.time()]
    verifier = Verifier(SECRET, clock=lambda: now[0])
    header = f"Bearer {token}"
    assert verifier.caller(header).subject == "u1"
    assert verifier.caller(header).facility_id == "fac-1"
    assert len(verified) == 1  # the second came from memory
    now[0] += 61  # past the token's exp: memory no longer vouches for it
    verifier.caller(header)
    assert len(verified) == 2


def test_a_bad_or_expired_token_is_never_remembered() -> None:
    verifier = Verifier(SECRET)
    forged = mint("x" * 40, "u1", ["super_admin"], None)
    expired = mint(SECRET, "u1", ["accountant"], None, ttl_seconds=-120)
    for token in (forged, expired, forged):
        with pytest.raises(Unauthenticated):
            verifier.caller(f"Bearer {token}")
    assert verifier._known == {}
