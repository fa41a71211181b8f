"""The typed stack configuration: every key Pulumi.yaml declares, read once by infra/__main__.py."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, cast

import pulumi

from infra import topology
from infra.swarm import swarm_model
from infra.topology import Sizing

Mode = Literal["host", "swarm"]


class ConfigReader(Protocol):
    """The slice of pulumi.Config this module uses (tests may pass a fake)."""

    def get(self, key: str) -> str | None: ...
    def get_bool(self, key: str) -> bool | None: ...
    def get_object(self, key: str) -> Any: ...
    def get_secret(self, key: str) -> pulumi.Output[str] | None: ...


def config_key(name: str) -> str:
    """`zain_cash_api_key` → `zainCashApiKey`, the Pulumi config key of a secret or image."""
    head, *rest = name.lower().split("_")
    return head + "".join(part.capitalize() for part in rest)


@dataclass(frozen=True)
class StackConfig:
    docker_host: str | None
    sizing: Sizing
    app_env: str
    log_level: str
    name_prefix: str
    public_host: str
    build_image: bool
    base_image: str
    profiles: tuple[str, ...]
    publish_backend_ports: bool
    require_external_secrets: bool
    images: Mapping[str, str]  # image variable (MYSQL_IMAGE) → reference
    mode: Mode = "host"
    # Swarm mode: replicas by the topology's replica variable (GATEWAY_REPLICAS), and
    # whether the overlays go unencrypted (kernels without ESP).
    replicas: Mapping[str, int] = field(default_factory=dict)
    plain_overlay: bool = False
    secrets: Mapping[str, pulumi.Output[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, config: ConfigReader) -> StackConfig:
        sizing = config.get("sizing") or "small"
        if sizing not in ("small", "large"):
            raise ValueError(f"nilecare:sizing must be small or large, got {sizing!r}")
        profiles_raw = config.get_object("profiles") or []
        if not isinstance(profiles_raw, list) or not all(isinstance(p, str) for p in profiles_raw):
            raise ValueError(f"nilecare:profiles must be a list of names, got {profiles_raw!r}")
        unknown = set(profiles_raw) - set(topology.PROFILES)
        if unknown:
            raise ValueError(f"nilecare:profiles names unknown profile(s) {sorted(unknown)}")
        mode = config.get("mode") or "host"
        if mode not in ("host", "swarm"):
            raise ValueError(f"nilecare:mode must be host or swarm, got {mode!r}")
        replicas = {variable: _count(config, key, default)
                    for variable, key, default in (("GATEWAY_REPLICAS", "gatewayReplicas", 3),
                                                   ("WORKER_REPLICAS", "workerReplicas", 2))}
        # The swarm's topology: the host one and the edge in front of the gateways.
        model = swarm_model()
        images = {
            image.variable: config.get(config_key(image.variable))
            or image.default
            for image in model.images()
        }
        secrets: dict[str, pulumi.Output[str]] = {}
        for secret in model.secrets:
            value = config.get_secret(config_key(secret.name))
            if value is not None:
                secrets[secret.name] = value
        return cls(
            docker_host=config.get("dockerHost") or None,
            sizing=cast(Sizing, sizing),
            app_env=config.get("appEnv") or "development",
            log_level=config.get("logLevel") or "INFO",
            name_prefix=config.get("namePrefix") or "",
            public_host=config.get("publicHost") or "127.0.0.1",
            build_image=_bool(config, "buildImage", True),
            base_image=config.get("baseImage") or "python:3.11-slim-bookworm",
            profiles=tuple(profiles_raw),
            publish_backend_ports=_bool(config, "publishBackendPorts", True),
            require_external_secrets=_bool(config, "requireExternalSecrets", False),
            images=images,
            secrets=secrets,
            mode=cast(Mode, mode),
            replicas=replicas,
            plain_overlay=_bool(config, "plainOverlay", False),
        )


def _count(config: ConfigReader, key: str, default: int) -> int:
    raw = config.get(key)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= 100:
        raise ValueError(f"nilecare:{key} must be a whole number from 1 to 100, got {raw!r}")
    return int(raw)


def _bool(config: ConfigReader, key: str, default: bool) -> bool:
    value = config.get_bool(key)
    return default if value is None else value
