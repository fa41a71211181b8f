"""The embedded development environment: local secrets and the variables `nilecare dev` sets."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from service.domain.catalog import credential_groups

SIMULATOR_PORT = 7002


def ensure_secrets(directory: Path) -> Path:
    """Write random development secrets once (kept across runs so tokens stay valid)."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    wanted: dict[str, str] = {
        "jwt_secret": secrets.token_hex(32),
        "webhook_secret": secrets.token_hex(32),
        "encryption_key": secrets.token_hex(32),
    }
    for group in credential_groups():
        wanted.update({group.api_key: "dev-" + secrets.token_hex(8),
                       group.api_secret: secrets.token_hex(32)})
    for name, value in wanted.items():
        path = directory / name
        if not path.exists():
            path.write_text(value + "\n", encoding="utf-8")
            path.chmod(0o600)
    return directory


def environment(data_dir: Path, simulator_port: int = SIMULATOR_PORT) -> dict[str, str]:
    """What the embedded default runs with: SQLite, in-process cache, the simulator."""
    env = dict(os.environ)
    env.setdefault("APP_ENV", "development")
    env.setdefault("LOG_FORMAT", "console")
    env.setdefault("DATA_DIR", str(data_dir))
    env.setdefault("SECRETS_DIR", str(ensure_secrets(data_dir / "dev-secrets")))
    env.setdefault("PROVIDER_SIMULATOR_URL", f"http://127.0.0.1:{simulator_port}")
    # Provider webhooks must reach this gateway, wherever GATEWAY_PORT put it.
    env.setdefault("GATEWAY_PUBLIC_URL",
                   f"http://127.0.0.1:{env.get('GATEWAY_PORT') or '7001'}")
    env.setdefault("STATEMENT_DIR", str(data_dir / "statements"))
    for group in credential_groups():
        env.setdefault(group.merchant_id.upper(), f"NILECARE-{group.group.upper()}")
    return env
