"""AES-256-GCM sealing of payer account numbers (phones) kept at rest."""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class Sealer:
    def __init__(self, hex_key: str) -> None:
        key = bytes.fromhex(hex_key)
        if len(key) != 32:
            raise ValueError("ENCRYPTION_KEY must be 32 bytes (64 hex characters)")
        self._aead = AESGCM(key)

    def seal(self, plain: str) -> str:
        nonce = os.urandom(12)
        return base64.urlsafe_b64encode(
            nonce + self._aead.encrypt(nonce, plain.encode(), None)
        ).decode()

    def open(self, sealed: str) -> str | None:
        """The plain text, or None when it was sealed with another key."""
        raw = base64.urlsafe_b64decode(sealed.encode())
        try:
            return self._aead.decrypt(raw[:12], raw[12:], None).decode()
        except InvalidTag:
            return None


def mask_phone(phone: str) -> str:
    return phone[:5] + "*" * (len(phone) - 9) + phone[-4:] if len(phone) > 9 else "****"
