"""A JSON request body as the API takes it: application/json, UTF-8, one object."""

from __future__ import annotations

import json
from typing import Any

from service.errors import Malformed, UnsupportedMediaType


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_object(raw: bytes) -> dict[str, Any]:
    """The JSON object in `raw`, or Malformed saying why it is not one."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Malformed("the body is not UTF-8 text", field="body") from None
    try:
        parsed = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise Malformed("the body is nested too deeply", field="body") from None
    except ValueError as exc:
        raise Malformed(f"the body is not valid JSON: {exc}", field="body") from None
    if not isinstance(parsed, dict):
        raise Malformed("the body must be a JSON object", field="body")
    return parsed


def check_media_type(content_type: str | None) -> None:
    media, *params = (content_type or "").split(";")
    media = media.strip().lower()
    if media != "application/json" and not (media.startswith("application/")
                                            and media.endswith("+json")):
        raise UnsupportedMediaType(
            f"send the body as application/json, not {media or 'no Content-Type'}",
            field="Content-Type")
    for param in params:
        name, _, value = param.strip().lower().partition("=")
        if name == "charset" and value.strip('"') not in ("utf-8", "utf8"):
            raise UnsupportedMediaType(f"the body must be UTF-8, not {value}",
                                       field="Content-Type")
