"""openapi.json: the gateway's OpenAPI document, committed so an integrator can generate a
client without running the service.

`make render-openapi` writes it from the application itself (the routes, their types and
service/api/contract.py); `make render-check-openapi`, and so CI, fails when the committed file
differs. Nothing in it depends on the configuration: the app is built with placeholder
secrets on an in-memory database that is never opened.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from infra.generated import command
from service.api import contract
from service.api.app import create_app
from service.settings import load

DEFAULT_PATH = Path("openapi.json")
PLACEHOLDER = "placeholder-never-used-" + "x" * 24


def document() -> dict[str, Any]:
    settings = load({
        "JWT_SECRET": PLACEHOLDER, "WEBHOOK_SECRET": PLACEHOLDER, "ENCRYPTION_KEY": "0f" * 32,
        "SECRETS_DIR": "/nonexistent", "DATABASE_URL": "sqlite://", "REDIS_URL": "",
        "PROVIDER_SIMULATOR_URL": "http://127.0.0.1:9",
    })
    app = create_app(settings)
    return contract.finish(app.openapi_schema).to_schema()


def render() -> str:
    return json.dumps(document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    return command(argv, __doc__, DEFAULT_PATH, lambda _: render(), "render-openapi")


if __name__ == "__main__":
    sys.exit(main())
