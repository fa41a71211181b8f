"""Schemathesis hooks for test_schemathesis.py (loaded through SCHEMATHESIS_HOOKS).

A client makes a new Idempotency-Key for each distinct request it sends. Schemathesis draws
keys from the header's schema and may draw one twice for two different requests, which the
API rightly refuses (422: the key was used with another request). Here each valid key it draws
gets a unique suffix, so every generated request is what a correct client would send; keys
the schema does not allow are left as drawn, for the negative tests.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import schemathesis

KEY = re.compile(r"^[!-~]([ -~]*[!-~])?$")
MAX = 255


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    headers = case.headers
    if not headers:
        return
    key = headers.get("Idempotency-Key")
    if isinstance(key, str) and len(key) <= MAX and KEY.match(key):
        suffix = "-" + uuid.uuid4().hex
        headers["Idempotency-Key"] = key[:MAX - len(suffix)] + suffix
