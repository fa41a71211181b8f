"""The one deployment model: the six NileCare containers, helpers, networks, volumes, secrets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any, Literal

from service.domain.catalog import credential_groups

PROJECT = "nilecare"
SECRETS_DIR = "/run/secrets"
ALERTMANAGER_SECRETS_DIR = "/etc/alertmanager/secrets"
NILECARE_USER = "10001:10001"
STATEMENT_DIR = "/var/lib/nilecare/statements"
# Inside a container a process must listen on every interface to be reachable at all; what the
# host exposes is decided by the published ports.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104
TMP = "/tmp"  # noqa: S108 - a private tmpfs per container, writable under a read-only root

CORE_SERVICES = (
    "payment-gateway-service",
    "payment-worker",
    "mysql-payment",
    "redis-payment",
    "payment-reconciliation-worker",
    "payment-metrics-exporter",
)
PROFILES = ("monitoring", "simulator")
# Docker binds no published port of a container that is only on internal networks, so MySQL and
# Redis join this one as well when their ports are published (and only then).
HOST_ACCESS = "host-access"

Sizing = Literal["small", "large"]


class SecretKind(Enum):
    """How a secret comes into being when no operator supplied it."""

    GENERATED = "generated"  # random hex; safe to generate in every environment
    EXTERNAL = "external"  # issued by someone else (a bank, PagerDuty); placeholders only locally


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
    depends_on: tuple[str, ...] = ()  # started once these report healthy
    user: str | None = None
    read_only: bool = False
    tmpfs: tuple[str, ...] = ()
    restart: str = "unless-stopped"
    profile: str | None = None
    aliases: tuple[str, ...] = ()
    metrics: Metrics | None = None

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


WORKER_METRICS = Metrics("payment-worker", 9102)
RECONCILIATION_METRICS = Metrics("payment-reconciliation-worker", 9103)

NILECARE_IMAGE = Image("NILECARE_IMAGE", "nilecare-payments:latest")
MYSQL_IMAGE = Image("MYSQL_IMAGE", "mysql:8.4")
REDIS_IMAGE = Image("REDIS_IMAGE", "redis:7.4")
PROMETHEUS_IMAGE = Image("PROMETHEUS_IMAGE", "prom/prometheus:v2.53.4")
ALERTMANAGER_IMAGE = Image("ALERTMANAGER_IMAGE", "prom/alertmanager:v0.27.0")
GRAFANA_IMAGE = Image("GRAFANA_IMAGE", "grafana/grafana:11.6.0")

def secret_catalogue() -> tuple[Secret, ...]:
    """Every secret of the stack, the providers' read from their catalogue at call time."""
    return (*_FIXED_SECRETS[:6], *_provider_secrets(), *_FIXED_SECRETS[6:])


def _provider_secrets() -> tuple[Secret, ...]:
    return tuple(Secret(name, SecretKind.EXTERNAL, description=f"{group.label} API {part}")
                 for group in credential_groups()
                 for name, part in zip(group.secrets, ("key", "secret"), strict=True))


# The first six are the service's own; the providers' come between them and the rest.
_FIXED_SECRETS: tuple[Secret, ...] = (
    Secret("mysql_root_password", SecretKind.GENERATED, description="MySQL root password"),
    Secret("database_password", SecretKind.GENERATED, description="MySQL `payments` user"),
    Secret("redis_password", SecretKind.GENERATED, description="Redis requirepass"),
    Secret("jwt_secret", SecretKind.GENERATED, description="HS256 key for API tokens"),
    Secret("webhook_secret", SecretKind.GENERATED, 64, "HMAC key for provider webhooks"),
    Secret("encryption_key", SecretKind.GENERATED, description="AES-256 key (payer accounts)"),
    Secret("aws_secret_access_key", SecretKind.EXTERNAL, description="S3 statements bucket"),
    Secret("smtp_password", SecretKind.EXTERNAL, description="daily summary email account"),
    Secret("pagerduty_routing_key", SecretKind.EXTERNAL, description="PagerDuty Events v2 key"),
    Secret(
        "slack_webhook_url",
        SecretKind.EXTERNAL,
        description="Slack incoming webhook",
        placeholder="https://hooks.slack.invalid/services/local",
    ),
    Secret("alertmanager_smtp_password", SecretKind.EXTERNAL, description="alert email account"),
)
SECRETS = secret_catalogue()  # the current catalogue's, for readers that need no other

_CORE_SECRETS = ("database_password", "redis_password", "jwt_secret", "webhook_secret",
                 "encryption_key")

_SIZES: Mapping[Sizing, Mapping[str, Limits]] = MappingProxyType({
    "small": MappingProxyType({
        "payment-gateway-service": Limits(512, 1.0),
        "payment-worker": Limits(384, 0.5),
        "mysql-payment": Limits(1536, 1.0),
        # Above Redis's own 1 GB maxmemory, so Redis evicts before the kernel kills it.
        "redis-payment": Limits(1280, 0.5),
        "payment-reconciliation-worker": Limits(384, 0.5),
        "payment-metrics-exporter": Limits(256, 0.25),
        "payment-provider-simulator": Limits(256, 0.25),
        "prometheus": Limits(512, 0.5),
        "alertmanager": Limits(128, 0.25),
        "grafana": Limits(384, 0.5),
    }),
    "large": MappingProxyType({
        "payment-gateway-service": Limits(1024, 2.0),
        "payment-worker": Limits(768, 1.0),
        "mysql-payment": Limits(4096, 2.0),
        "redis-payment": Limits(1536, 1.0),
        "payment-reconciliation-worker": Limits(768, 1.0),
        "payment-metrics-exporter": Limits(512, 0.5),
        "payment-provider-simulator": Limits(256, 0.25),
        "prometheus": Limits(2048, 1.0),
        "alertmanager": Limits(256, 0.25),
        "grafana": Limits(768, 1.0),
    }),
})


def _app_service(**fields: Any) -> Service:
    """A NileCare process: the one image, a non-root user, a read-only root filesystem."""
    return Service(image=NILECARE_IMAGE, user=NILECARE_USER, read_only=True, tmpfs=(TMP,),
                   **fields)


def _run_secrets(*names: str) -> tuple[SecretMount, ...]:
    return tuple(SecretMount(name, f"{SECRETS_DIR}/{name}") for name in names)


def _app_environment(app_env: str, log_level: str) -> dict[str, str]:
    env = {
        "APP_ENV": app_env,
        "LOG_LEVEL": log_level,
        "LOG_FORMAT": "json",
        "SECRETS_DIR": SECRETS_DIR,
        "DATA_DIR": f"{TMP}/nilecare",
        "DATABASE_URL": "mysql+pymysql://payments@mysql-payment:3306/nilecare_payments",
        "REDIS_URL": "redis://default@redis-payment:6379/0",
        "TIMEZONE": "Africa/Khartoum",
        "PROVIDER_SIMULATOR_URL": "http://payment-provider-simulator:7002",
    }
    # Merchant ids are public identifiers; only keys and secrets travel as secret files.
    env.update({g.merchant_id.upper(): f"nilecare-{g.group.replace('_', '-')}"
                for g in credential_groups()})
    return env


def build(
    sizing: Sizing = "small",
    *,
    app_env: str = "development",
    log_level: str = "INFO",
    publish_backend_ports: bool = True,
) -> Topology:
    """The topology for one environment; `sizing` picks the memory and CPU limits."""
    if sizing not in _SIZES:
        raise ValueError(f"sizing must be one of {sorted(_SIZES)}, got {sizing!r}")
    limits = _SIZES[sizing]
    app_env_vars = _app_environment(app_env, log_level)
    provider_secrets = [s.name for s in _provider_secrets()]
    worker_health = Healthcheck(("CMD", "nilecare", "healthcheck", "--worker"), 15, 5, 5, 30)
    # The database and Redis stay off the frontend whatever happens; the host-access network
    # only carries the host's connections to their 127.0.0.1 ports.
    stores = ("backend", HOST_ACCESS) if publish_backend_ports else ("backend",)
    both = ("frontend", "backend")

    services = (
        _app_service(
            name="payment-gateway-service",
            # Migrations run before the API serves, so every later process sees the schema at head.
            command=("sh", "-c", "nilecare migrate && exec nilecare serve"),
            environment={**app_env_vars, "GATEWAY_HOST": ALL_INTERFACES, "GATEWAY_PORT": "7001",
                         "GATEWAY_PUBLIC_URL": "http://127.0.0.1:7001"},
            secrets=_run_secrets(*_CORE_SECRETS, *provider_secrets),
            ports=(Port(7001, 7001, None),),
            healthcheck=Healthcheck(
                ("CMD", "nilecare", "healthcheck", "http://127.0.0.1:7001/health"), 10, 5, 5, 60
            ),
            limits=limits["payment-gateway-service"],
            networks=both,
            depends_on=("mysql-payment", "redis-payment"),
            metrics=Metrics("payment-gateway", 7001),
        ),
        _app_service(
            name="payment-worker",
            command=("nilecare", "worker"),
            environment={**app_env_vars, "METRICS_HOST": ALL_INTERFACES,
                         "WORKER_METRICS_PORT": str(WORKER_METRICS.port)},
            secrets=_run_secrets(*_CORE_SECRETS, *provider_secrets, "smtp_password"),
            healthcheck=worker_health,
            limits=limits["payment-worker"],
            networks=both,
            depends_on=("payment-gateway-service",),
            metrics=WORKER_METRICS,
        ),
        Service(
            name="mysql-payment",
            image=MYSQL_IMAGE,
            # Alembic creates triggers as the unprivileged user; with binary logging on, MySQL
            # refuses that unless function creators are trusted.
            command=("--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci",
                     "--log-bin-trust-function-creators=1"),
            environment={
                "MYSQL_DATABASE": "nilecare_payments",
                "MYSQL_USER": "payments",
                "MYSQL_PASSWORD_FILE": f"{SECRETS_DIR}/database_password",
                "MYSQL_ROOT_PASSWORD_FILE": f"{SECRETS_DIR}/mysql_root_password",
            },
            secrets=_run_secrets("database_password", "mysql_root_password"),
            ports=(Port(3306, 3307),) if publish_backend_ports else (),
            healthcheck=Healthcheck(
                ("CMD-SHELL", 'MYSQL_PWD="$(cat /run/secrets/database_password)" '
                 "mysql -h 127.0.0.1 -u payments -e 'SELECT 1' nilecare_payments >/dev/null"),
                10, 5, 10, 90,
            ),
            limits=limits["mysql-payment"],
            networks=stores,
            volumes=(VolumeMount("mysql-data", "/var/lib/mysql"),),
            # The image's entrypoint starts as root to own the data directory, then drops to
            # the mysql user; the server process itself never runs as root.
            user=None,
            read_only=False,
        ),
        Service(
            name="redis-payment",
            image=REDIS_IMAGE,
            # The password goes into a config file on tmpfs, never onto the command line.
            command=("sh", "-c",
                     'umask 077 && printf \'requirepass "%s"\\n\' '
                     '"$(cat /run/secrets/redis_password)" > /tmp/redis.conf && '
                     "exec redis-server /tmp/redis.conf --maxmemory 1gb "
                     "--maxmemory-policy allkeys-lru --appendonly no --dir /data"),
            secrets=_run_secrets("redis_password"),
            ports=(Port(6379, 6380),) if publish_backend_ports else (),
            healthcheck=Healthcheck(
                ("CMD-SHELL", 'REDISCLI_AUTH="$(cat /run/secrets/redis_password)" '
                 "redis-cli ping | grep -q PONG"),
                10, 5, 5, 10,
            ),
            limits=limits["redis-payment"],
            networks=stores,
            volumes=(VolumeMount("redis-data", "/data"),),
            user="redis",
            read_only=True,
            tmpfs=(TMP,),
        ),
        _app_service(
            name="payment-reconciliation-worker",
            command=("nilecare", "reconciliation-worker"),
            environment={**app_env_vars, "STATEMENT_DIR": STATEMENT_DIR,
                         "METRICS_HOST": ALL_INTERFACES,
                         "RECONCILIATION_METRICS_PORT": str(RECONCILIATION_METRICS.port)},
            secrets=_run_secrets(*_CORE_SECRETS, *provider_secrets, "aws_secret_access_key",
                                 "smtp_password"),
            # The reconciliation worker beats its own file (a daily job with a waiting loop).
            healthcheck=Healthcheck(
                ("CMD", "nilecare", "healthcheck", "--worker", "--heartbeat",
                 f"{TMP}/nilecare-reconciliation.heartbeat"), 15, 5, 5, 30
            ),
            limits=limits["payment-reconciliation-worker"],
            networks=both,
            volumes=(VolumeMount("statements", STATEMENT_DIR),),
            depends_on=("payment-gateway-service",),
            metrics=RECONCILIATION_METRICS,
        ),
        _app_service(
            name="payment-metrics-exporter",
            command=("nilecare", "exporter"),
            environment={**app_env_vars, "EXPORTER_HOST": ALL_INTERFACES, "EXPORTER_PORT": "9101"},
            secrets=_run_secrets(*_CORE_SECRETS),
            ports=(Port(9101, 9101),),
            healthcheck=Healthcheck(
                ("CMD", "nilecare", "healthcheck", "http://127.0.0.1:9101/health"), 15, 5, 5, 30
            ),
            limits=limits["payment-metrics-exporter"],
            networks=both,
            depends_on=("payment-gateway-service",),
            metrics=Metrics("payment-metrics-exporter", 9101),
        ),
        _app_service(
            name="payment-provider-simulator",
            command=("nilecare", "simulator", "--host", ALL_INTERFACES),
            environment={**app_env_vars, "GATEWAY_HOST": ALL_INTERFACES},
            secrets=_run_secrets(*_CORE_SECRETS, *provider_secrets),
            healthcheck=Healthcheck(
                ("CMD", "nilecare", "healthcheck", "http://127.0.0.1:7002/health"), 10, 5, 5, 20
            ),
            limits=limits["payment-provider-simulator"],
            networks=("frontend",),
            profile="simulator",
        ),
        Service(
            name="prometheus",
            image=PROMETHEUS_IMAGE,
            command=("--config.file=/etc/prometheus/prometheus.yml",
                     "--storage.tsdb.path=/prometheus", "--storage.tsdb.retention.time=15d",
                     "--web.enable-lifecycle"),
            ports=(Port(9090, 9090),),
            healthcheck=Healthcheck(
                ("CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:9090/-/healthy")
            ),
            limits=limits["prometheus"],
            networks=("frontend",),
            volumes=(VolumeMount("prometheus-data", "/prometheus"),),
            # The generated config reads its scrape targets from file_sd files (one per job);
            # these name the services on the compose and Pulumi networks.
            files=(FileMount("monitoring/prometheus.yml", "/etc/prometheus/prometheus.yml"),
                   FileMount("monitoring/rules", "/etc/prometheus/rules"),
                   FileMount("monitoring/targets", "/etc/prometheus/targets")),
            depends_on=("alertmanager",),
            profile="monitoring",
        ),
        Service(
            name="alertmanager",
            image=ALERTMANAGER_IMAGE,
            command=("--config.file=/etc/alertmanager/alertmanager.yml",
                     "--storage.path=/alertmanager"),
            secrets=(
                SecretMount("pagerduty_routing_key",
                            f"{ALERTMANAGER_SECRETS_DIR}/pagerduty_routing_key"),
                SecretMount("slack_webhook_url", f"{ALERTMANAGER_SECRETS_DIR}/slack_webhook_url"),
                SecretMount("alertmanager_smtp_password",
                            f"{ALERTMANAGER_SECRETS_DIR}/smtp_password"),
            ),
            ports=(Port(9093, 9093),),
            healthcheck=Healthcheck(
                ("CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:9093/-/healthy")
            ),
            limits=limits["alertmanager"],
            networks=("frontend",),
            metrics=Metrics("alertmanager", 9093),
            volumes=(VolumeMount("alertmanager-data", "/alertmanager"),),
            files=(FileMount("alertmanager/alertmanager.yml",
                             "/etc/alertmanager/alertmanager.yml"),
                   FileMount("alertmanager/templates", "/etc/alertmanager/templates")),
            profile="monitoring",
        ),
        Service(
            name="grafana",
            image=GRAFANA_IMAGE,
            command=(),
            environment={"GF_AUTH_ANONYMOUS_ENABLED": "false",
                         "GF_USERS_ALLOW_SIGN_UP": "false",
                         "GF_PATHS_PROVISIONING": "/etc/grafana/provisioning"},
            ports=(Port(3000, 3000),),
            healthcheck=Healthcheck(
                ("CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:3000/api/health")
            ),
            limits=limits["grafana"],
            networks=("frontend",),
            volumes=(VolumeMount("grafana-data", "/var/lib/grafana"),),
            files=(FileMount("monitoring/grafana/provisioning", "/etc/grafana/provisioning"),
                   FileMount("monitoring/dashboards", "/var/lib/grafana/dashboards")),
            depends_on=("prometheus",),
            profile="monitoring",
        ),
    )
    return Topology(
        services=services,
        networks=(
            Network("frontend", False, "the API, the workers' way out to providers, monitoring"),
            Network("backend", True, "MySQL and Redis; no route in or out of the host"),
            *((Network(HOST_ACCESS, False,
                       "the host to MySQL and Redis on 127.0.0.1 only: no NAT out, no "
                       "container-to-container traffic", masquerade=False, icc=False),)
              if publish_backend_ports else ()),
        ),
        volumes=("mysql-data", "redis-data", "statements", "prometheus-data",
                 "alertmanager-data", "grafana-data"),
        secrets=secret_catalogue(),
    )
