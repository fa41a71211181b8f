"""HMAC-SHA256 request and webhook signatures: `t=<unix>,v1=<hex>` over "{t}.{raw body}"."""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-NileCare-Signature"


class SignatureError(ValueError):
    """The signature is missing, malformed, stale or wrong; the message says which."""


def sign(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify(secret: str, header: str | None, body: bytes, now: float, tolerance: int) -> int:
    """Check `header` against `body`; return its timestamp or raise SignatureError.

    The tolerance applies both ways: a timestamp too far in the future is as suspect as a
    replayed old one.
    """
    if not header:
        raise SignatureError(f"missing {HEADER} header")
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise SignatureError(f"malformed {HEADER} header")
        parts.setdefault(key, []).append(value)
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError):
        raise SignatureError(f"{HEADER} has no valid t=<unix seconds>") from None
    if abs(now - timestamp) > tolerance:
        raise SignatureError(f"signature timestamp is outside the {tolerance} s tolerance")
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    # Several v1 values are allowed so a secret can be rotated without dropping events.
    if not any(hmac.compare_digest(expected, given) for given in parts.get("v1", [])):
        raise SignatureError("signature does not match the body")
    return timestamp
