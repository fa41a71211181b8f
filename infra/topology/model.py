"""The deployment model's types: services, their ports, healthchecks, limits, mounts and
secrets, the networks, and the topology that holds them. Compose, Pulumi and the swarm stack
are rendered from one Topology; nothing here knows which."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Literal

PROFILES = ("monitoring", "simulator")
Sizing = Literal["small", "large"]


class SecretKind(Enum):
    """How a secret comes into being when no operator supplied it."""

    GENERATED = "generated"  # random hex; safe to generate in every environment
    EXTERNAL = "external"  # issued by someone else (a bank, PagerDuty); placeholders only locally
    # The gateway's TLS files: a development CA and certificate made together (service/tls.py)
    # where nobody supplied them; production brings the ones its CA issued.
    CERTIFICATE = "certificate"


@dataclass(frozen=True)
class Secret:
    name: str
    kind: SecretKind
    hex_bytes: int = 32
    description: str = ""
    # A local placeholder that has the right shape for its consumer (a URL for Slack).
    placeholder: str | None = None


@dataclass(frozen=True)
class SecretMount:
    secret: str
    target: str


@dataclass(frozen=True)
class Image:
    """An image reference an operator can override with one environment variable."""

    variable: str
    default: str

    @property
    def compose_ref(self) -> str:
        return f"${{{self.variable}:-{self.default}}}"


@dataclass(frozen=True)
class Port:
    container: int
    host: int
    # None publishes on every interface; the database, Redis and the exporter stay on loopback.
    host_ip: str | None = "127.0.0.1"


@dataclass(frozen=True)
class Metrics:
    """Where Prometheus scrapes a process: its job name, container port and path."""

    job: str
    port: int
    path: str = "/metrics"
    # An https target is checked against the gateway's CA under `server_name`.
    scheme: Literal["http", "https"] = "http"
    server_name: str | None = None


@dataclass(frozen=True)
class Healthcheck:
    test: tuple[str, ...]
    interval_s: int = 10
    timeout_s: int = 5
    retries: int = 5
    start_period_s: int = 20


@dataclass(frozen=True)
class Limits:
    memory_mb: int
    cpus: float


@dataclass(frozen=True)
class VolumeMount:
    volume: str
    target: str


@dataclass(frozen=True)
class FileMount:
    """A repo file or directory (generated monitoring config) mounted read-only."""

    source: str
    target: str


@dataclass(frozen=True)
class HostPath:
    """A path of the node the task runs on, mounted read-only (the swarm's Prometheus reads
    the Docker socket of its manager)."""

    source: str
    target: str


@dataclass(frozen=True)
class Network:
    name: str
    internal: bool
    description: str
    # Both off for a network that exists only so the host can reach published ports: nothing
    # leaves the host under its address, and its members cannot talk to each other over it.
    masquerade: bool = True
    icc: bool = True

    @property
    def driver_options(self) -> Mapping[str, str]:
        """The bridge driver options that differ from Docker's defaults, as Docker spells them."""
        options = {}
        if not self.masquerade:
            options["com.docker.network.bridge.enable_ip_masquerade"] = "false"
        if not self.icc:
            options["com.docker.network.bridge.enable_icc"] = "false"
        return MappingProxyType(options)


@dataclass(frozen=True)
class Replication:
    """How a service runs on a swarm; compose and Pulumi on one host run one of each.

    The count is `replicas`, or the stack variable `variable` when one is named. A service
    that owns something on one node (a local volume, a host-mode port) is pinned to the node
    carrying `node_label` (=true), and an update stops its task before the successor starts
    (two servers on one data directory would corrupt it; two cannot bind one host port);
    every other update starts the new task first."""

    replicas: int = 1
    variable: str | None = None
    node_label: str | None = None
    managers_only: bool = False  # it reads the swarm's state from a manager's Docker API

    @property
    def update_order(self) -> Literal["start-first", "stop-first"]:
        return "stop-first" if self.node_label else "start-first"

    @property
    def constraints(self) -> tuple[str, ...]:
        """The placement constraints, as a swarm spells them."""
        return ((f"node.labels.{self.node_label} == true",) if self.node_label else ()) + (
            ("node.role == manager",) if self.managers_only else ())


@dataclass(frozen=True)
class Service:
    name: str
    image: Image
    command: tuple[str, ...]
    healthcheck: Healthcheck
    limits: Limits
    networks: tuple[str, ...]
    environment: Mapping[str, str] = field(default_factory=dict)
    secrets: tuple[SecretMount, ...] = ()
    ports: tuple[Port, ...] = ()
    volumes: tuple[VolumeMount, ...] = ()
    files: tuple[FileMount, ...] = ()
    host_paths: tuple[HostPath, ...] = ()
    depends_on: tuple[str, ...] = ()  # started once these report healthy
    user: str | None = None
    read_only: bool = False
    tmpfs: tuple[str, ...] = ()
    restart: str = "unless-stopped"
    profile: str | None = None
    aliases: tuple[str, ...] = ()
    metrics: Metrics | None = None
    swarm: Replication = Replication()

    @property
    def scrape_target(self) -> str | None:
        """`service:port` on the container networks, when the service has metrics."""
        return f"{self.name}:{self.metrics.port}" if self.metrics else None


@dataclass(frozen=True)
class LogRotation:
    driver: str = "json-file"
    max_size: str = "10m"
    max_file: int = 5


@dataclass(frozen=True)
class Topology:
    services: tuple[Service, ...]
    networks: tuple[Network, ...]
    volumes: tuple[str, ...]
    secrets: tuple[Secret, ...]
    logging: LogRotation = LogRotation()

    def service(self, name: str) -> Service:
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(f"no service named {name!r} in the topology")

    def secret(self, name: str) -> Secret:
        for secret in self.secrets:
            if secret.name == name:
                return secret
        raise KeyError(f"no secret named {name!r} in the topology")

    def scraped(self, profiles: tuple[str, ...] = PROFILES) -> tuple[Service, ...]:
        """The enabled services Prometheus scrapes, each with its job."""
        return tuple(s for s in self.enabled(profiles) if s.metrics is not None)

    def images(self) -> tuple[Image, ...]:
        seen: dict[str, Image] = {}
        for service in self.services:
            seen.setdefault(service.image.variable, service.image)
        return tuple(seen.values())

    def enabled(self, profiles: tuple[str, ...]) -> tuple[Service, ...]:
        """The services that run when `profiles` are switched on (core ones always run)."""
        unknown = set(profiles) - set(PROFILES)
        if unknown:
            raise ValueError(f"unknown profile(s) {sorted(unknown)}; known: {list(PROFILES)}")
        return tuple(s for s in self.services if s.profile is None or s.profile in profiles)

    def start_order(self, profiles: tuple[str, ...] = ()) -> tuple[Service, ...]:
        """The enabled services, each after everything it depends on."""
        enabled = {s.name: s for s in self.enabled(profiles)}
        ordered: list[Service] = []
        visiting: set[str] = set()

        def visit(name: str) -> None:
            if any(s.name == name for s in ordered):
                return
            if name in visiting:
                raise ValueError(f"dependency cycle through {name!r}")
            if name not in enabled:
                raise ValueError(f"a service depends on {name!r}, which is not enabled")
            visiting.add(name)
            for dependency in enabled[name].depends_on:
                visit(dependency)
            visiting.discard(name)
            ordered.append(enabled[name])

        for name in enabled:
            visit(name)
        return tuple(ordered)
