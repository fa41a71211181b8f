"""The one typed Settings object, read from the environment and secret files at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, create_model, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from service import deployment
from service.domain import catalog
from service.domain.catalog import Credentials

DEFAULT_SECRETS_DIR = deployment.SECRETS_DIR

class SettingsError(Exception):
    """Start-up configuration is missing or malformed; the message names each variable."""


@dataclass(frozen=True)
class ProviderCredentials:
    api_key: str
    api_secret: str
    merchant_id: str
    api_url: str | None


class _Settings(BaseSettings):
    """Everything a NileCare process reads from its environment (see env.example)."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    # --- service ---
    app_env: Literal["development", "production"] = "development"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    gateway_host: str = "127.0.0.1"
    gateway_port: int = Field(deployment.GATEWAY_PORT, ge=1, le=65535)
    gateway_public_url: str = deployment.local_url(deployment.GATEWAY_PORT)
    data_dir: Path = Path("var")
    max_request_bytes: int = Field(65536, ge=1024)
    rate_limit_per_minute: int = Field(600, ge=1)
    idempotency_ttl_hours: int = Field(24, ge=1)
    # How long a keyed request holds its key; a retry after this takes over a request whose
    # gateway died, and answers with what that request created.
    idempotency_lock_seconds: int = Field(60, ge=1, le=3600)

    # --- database and cache ---
    database_url: str | None = None
    database_password: SecretStr | None = None
    redis_url: str | None = None
    redis_password: SecretStr | None = None
    # How long a process waits on MySQL before it answers 503 or retries later: to connect
    # (and for a free pooled connection), for each read or write, and for a row lock.
    database_connect_timeout_seconds: float = Field(3.0, gt=0, le=60)
    database_timeout_seconds: float = Field(5.0, gt=0, le=300)
    database_lock_wait_seconds: int = Field(5, ge=1, le=300)

    # --- security ---
    jwt_secret: SecretStr = Field(min_length=32)
    webhook_secret: SecretStr = Field(min_length=32)
    webhook_tolerance_seconds: int = Field(300, ge=1)
    # AES-256-GCM key (64 hex characters) for payer account numbers kept at rest.
    encryption_key: SecretStr = Field(min_length=64, max_length=64)

    # --- TLS on the gateway's port (service/tls.py) ---
    # Both or neither; the gateway refuses to serve plain HTTP beyond 127.0.0.1.
    gateway_tls_cert_file: Path | None = None
    gateway_tls_key_file: Path | None = None
    # The CA the processes that call the gateway (the simulator's webhooks) trust.
    gateway_tls_ca_file: Path | None = None

    # --- providers ---
    provider_simulator_url: str | None = None
    provider_timeout_seconds: float = Field(10.0, gt=0)
    # Each credential group's four variables are added from the provider catalogue
    # (settings_class below).

    # --- workers ---
    worker_poll_interval_seconds: float = Field(5.0, gt=0)
    worker_lease_seconds: int = Field(120, ge=5)
    worker_batch_size: int = Field(50, ge=1, le=1000)
    pending_expiry_minutes: int = Field(60, ge=1)
    timezone: str = "Africa/Khartoum"
    reconciliation_time: time = time(2, 0)
    statement_dir: Path = Path("var/statements")
    exporter_host: str = "127.0.0.1"
    exporter_port: int = Field(deployment.EXPORTER_PORT, ge=1, le=65535)
    # Well under Prometheus's 10 s scrape timeout: a hung database must read as down, not
    # as a scrape that never answers.
    exporter_timeout_seconds: float = Field(3.0, gt=0, le=8)
    # Where the workers serve their own event counters (/metrics) for Prometheus.
    metrics_host: str = "127.0.0.1"
    worker_metrics_port: int = Field(deployment.WORKER_METRICS_PORT, ge=1, le=65535)
    reconciliation_metrics_port: int = Field(deployment.RECONCILIATION_METRICS_PORT, ge=1,
                                             le=65535)

    # --- AWS S3 (bank statements) ---
    aws_s3_bucket: str | None = None
    aws_s3_prefix: str = "statements/"
    aws_region: str = "af-south-1"
    aws_endpoint_url: str | None = None
    aws_access_key_id: SecretStr | None = None
    aws_secret_access_key: SecretStr | None = None

    # --- daily summary email ---
    smtp_host: str | None = None
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    smtp_from: str = "payments@nilecare.sd"
    summary_recipients: str = ""

    # --- feature flags ---
    feature_webhooks: bool = True
    feature_daily_summary: bool = True

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA timezone {value!r}") from exc
        return value

    @field_validator("encryption_key")
    @classmethod
    def _hex_key(cls, value: SecretStr) -> SecretStr:
        try:
            bytes.fromhex(value.get_secret_value())
        except ValueError:
            raise ValueError("must be 64 hexadecimal characters (openssl rand -hex 32)") from None
        return value

    @field_validator("database_url", "redis_url", "provider_simulator_url",
                     "gateway_tls_cert_file", "gateway_tls_key_file", "gateway_tls_ca_file",
                     mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only what load() passes in: the environment mapping and the secret files it read.
        return (init_settings,)

    # --- derived values ---
    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def embedded(self) -> bool:
        """True when no DATABASE_URL is set: SQLite and an in-process cache."""
        return self.database_url is None

    def sqlalchemy_url(self) -> str:
        if self.database_url is None:
            return f"sqlite:///{(self.data_dir / 'nilecare.db').resolve()}"
        return _with_password(self.database_url, self.database_password)

    def redis_dsn(self) -> str | None:
        if self.redis_url is None:
            return None
        return _with_password(self.redis_url, self.redis_password)

    def credentials(self, provider: str) -> ProviderCredentials | None:
        """The API credentials of an electronic provider, or None when not configured."""
        spec = catalog.BY_CODE.get(provider)
        group = spec.credentials if spec is not None else None
        if group is None:
            return None
        key: SecretStr | None = getattr(self, group.api_key, None)
        secret: SecretStr | None = getattr(self, group.api_secret, None)
        merchant: str | None = getattr(self, group.merchant_id, None)
        url: str | None = getattr(self, group.api_url, None)
        if key is None or secret is None or merchant is None:
            return None
        if url is None and self.provider_simulator_url:
            url = f"{self.provider_simulator_url.rstrip('/')}/{provider}"
        return ProviderCredentials(key.get_secret_value(), secret.get_secret_value(), merchant, url)

    @classmethod
    def env_names(cls) -> frozenset[str]:
        """Every variable Settings reads (env.example must list exactly these)."""
        return frozenset(name.upper() for name in cls.model_fields) | {"SECRETS_DIR"}


def settings_class(groups: list[Credentials] | None = None) -> type[_Settings]:
    """Settings with every credential group's variables (default: the catalogue's)."""
    fields: dict[str, Any] = {}
    for group in catalog.credential_groups() if groups is None else groups:
        fields |= {group.api_key: (SecretStr | None, None),
                   group.api_secret: (SecretStr | None, None),
                   group.merchant_id: (str | None, None),
                   group.api_url: (str | None, None)}
    return create_model("Settings", __base__=_Settings, __module__=__name__,
                        __doc__=_Settings.__doc__, **fields)


if TYPE_CHECKING:
    Settings = _Settings
else:
    Settings = settings_class()


def _with_password(url: str, password: SecretStr | None) -> str:
    """Insert a password read from a secret file into a URL that carries none."""
    if password is None or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    userinfo, host = rest.split("@", 1)
    if ":" in userinfo:
        return url
    from urllib.parse import quote

    return f"{scheme}://{userinfo}:{quote(password.get_secret_value(), safe='')}@{host}"


def load(environ: Mapping[str, str] | None = None, *,
         cls: type[_Settings] | None = None) -> Settings:
    """Build Settings (or `cls`, from settings_class) from `environ` (default: os.environ) and
    the secret files under SECRETS_DIR (default /run/secrets); environment values win over
    files.

    Raises SettingsError naming every missing or malformed variable.
    """
    cls = Settings if cls is None else cls
    env = dict(os.environ if environ is None else environ)
    secrets_dir = Path(env.get("SECRETS_DIR", str(DEFAULT_SECRETS_DIR)))
    fields = cls.model_fields
    values: dict[str, Any] = {}
    if secrets_dir.is_dir():
        for path in sorted(secrets_dir.iterdir()):
            name = path.name.lower()
            if name in fields and path.is_file():
                content = path.read_text(encoding="utf-8").strip()
                if content:
                    values[name] = content
    for key, value in env.items():
        name = key.lower()
        # An empty value means unset, so a copied env.example changes nothing.
        if name in fields and value.strip():
            values[name] = value
    try:
        return cls(**values)
    except ValidationError as exc:
        raise SettingsError(_describe(exc, secrets_dir, cls)) from None


def _describe(exc: ValidationError, secrets_dir: Path, cls: type[_Settings]) -> str:
    lines = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "?"
        message = error["msg"]
        if error["type"] == "missing":
            message = (
                f"is required: set it in the environment or in {secrets_dir / field}"
            )
        else:
            message = f"{message} (got {_shown(cls, field, error.get('input'))})"
        lines.append(f"{field.upper()} {message}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def _shown(cls: type[_Settings], field: str, value: Any) -> str:
    # Secrets are never echoed back, not even in a start-up error; nor is what no field names.
    info = cls.model_fields.get(field)
    if info is None or "SecretStr" in str(info.annotation):
        return "a value of the wrong form (hidden)"
    return repr(value)
