"""Settings: one object from env and secret files; errors name the variable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from service.settings import Settings, SettingsError, load
from tests.conftest import base_environ

ROOT = Path(__file__).resolve().parents[2]


def test_env_example_lists_exactly_what_settings_read() -> None:
    listed = {
        line.split("=", 1)[0]
        for line in (ROOT / "env.example").read_text().splitlines()
        if re.match(r"^[A-Z][A-Z0-9_]*=", line)
    }
    assert listed == Settings.env_names()


def test_missing_secrets_are_named() -> None:
    with pytest.raises(SettingsError) as caught:
        load({"SECRETS_DIR": "/nonexistent"})
    message = str(caught.value)
    for name in ("JWT_SECRET", "WEBHOOK_SECRET", "ENCRYPTION_KEY"):
        assert name in message


def test_malformed_values_are_named_and_secrets_not_echoed() -> None:
    env = base_environ(GATEWAY_PORT="seventy", TIMEZONE="Mars/Olympus", ENCRYPTION_KEY="zz" * 32)
    with pytest.raises(SettingsError) as caught:
        load(env)
    message = str(caught.value)
    assert "GATEWAY_PORT" in message and "'seventy'" in message
    assert "TIMEZONE" in message and "Mars/Olympus" in message
    assert "ENCRYPTION_KEY" in message and "zz" * 32 not in message


def test_secret_files_are_read_and_env_wins(tmp_path: Path) -> None:
    (tmp_path / "jwt_secret").write_text("f" * 40 + "\n")
    (tmp_path / "database_password").write_text("p@ss/word\n")
    env = base_environ(SECRETS_DIR=str(tmp_path), DATABASE_URL="mysql+pymysql://pay@db:3306/x")
    del env["JWT_SECRET"]
    settings = load(env)
    assert settings.jwt_secret.get_secret_value() == "f" * 40
    assert settings.sqlalchemy_url() == "mysql+pymysql://pay:p%40ss%2Fword@db:3306/x"
    assert load({**env, "JWT_SECRET": "e" * 40}).jwt_secret.get_secret_value() == "e" * 40


def test_blank_values_mean_unset() -> None:
    settings = load(base_environ(DATABASE_URL="", REDIS_URL=" ", ZAIN_CASH_API_KEY=""))
    assert settings.embedded and settings.redis_dsn() is None
    assert settings.credentials("zain_cash") is None
