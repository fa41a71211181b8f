"""The construction: one Topology per environment from the catalogue, the NileCare processes,
their stores and the optional monitoring and simulator profiles."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from infra.topology.catalogue import (
    ALL_INTERFACES,
    CORE_SECRETS,
    CORE_SERVICES,
    EXPORTER_METRICS,
    GATEWAY_CA_FILE,
    GATEWAY_METRICS,
    HOST_ACCESS,
    MYSQL_IMAGE,
    NILECARE_IMAGE,
    NILECARE_USER,
    RECONCILIATION_METRICS,
    REDIS_IMAGE,
    SECRETS_DIR,
    SIZES,
    STATEMENT_DIR,
    STORES_NODE,
    TLS_SECRETS,
    TMP,
    WORKER_METRICS,
    provider_secrets,
    secret_catalogue,
)
from infra.topology.model import (
    Healthcheck,
    Limits,
    Network,
    Port,
    Replication,
    SecretMount,
    Service,
    Sizing,
    Topology,
    VolumeMount,
)
from infra.topology.monitoring import monitoring
from service import deployment, tls
from service.domain.catalog import credential_groups

ORDER = (*CORE_SERVICES, "payment-provider-simulator", "prometheus", "alertmanager", "grafana")


@dataclass(frozen=True)
class _Plan:
    """What every part of one environment's construction reads."""

    limits: Mapping[str, Limits]
    app_env: dict[str, str]
    provider_secrets: tuple[str, ...]
    publish_backend_ports: bool


def build(
    sizing: Sizing = "small",
    *,
    app_env: str = "development",
    log_level: str = "INFO",
    publish_backend_ports: bool = True,
) -> Topology:
    """The topology for one environment; `sizing` picks the memory and CPU limits."""
    if sizing not in SIZES:
        raise ValueError(f"sizing must be one of {sorted(SIZES)}, got {sizing!r}")
    plan = _Plan(SIZES[sizing], _app_environment(app_env, log_level),
                 tuple(s.name for s in provider_secrets()), publish_backend_ports)
    services = (*_processes(plan), *_stores(plan), *monitoring(plan.limits))
    return Topology(
        # The core services first, in the catalogue's order, then the profiles'.
        services=tuple(sorted(services, key=lambda s: ORDER.index(s.name))),
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


def _app_service(**fields: Any) -> Service:
    """A NileCare process: the one image, a non-root user, a read-only root filesystem."""
    return Service(image=NILECARE_IMAGE, user=NILECARE_USER, read_only=True, tmpfs=(TMP,),
                   **fields)


def _buffer_pool_mb(limits: Limits) -> int:
    """Half the MySQL container's memory, in whole 128 MB chunks (InnoDB rounds the pool to
    its chunk size times the pool instances; a multiple of 128 MB is what it keeps)."""
    return max(128, limits.memory_mb // 2 // 128 * 128)


def _run_secrets(*names: str) -> tuple[SecretMount, ...]:
    return tuple(SecretMount(name, f"{SECRETS_DIR}/{name}") for name in names)


def _health_url(port: int, *timing: int) -> Healthcheck:
    """`nilecare healthcheck` against the process's own /health (there is no curl in the
    image); `timing` is interval, timeout, retries and start period in seconds."""
    return Healthcheck(("CMD", "nilecare", "healthcheck",
                        deployment.local_url(port, deployment.HEALTH_PATH)), *timing)


def _gateway_health() -> Healthcheck:
    """The gateway's own HTTPS port, its certificate checked against the CA under the name
    its callers use (the certificate need not name 127.0.0.1)."""
    return Healthcheck(("CMD", "nilecare", "healthcheck",
                        f"https://127.0.0.1:{deployment.GATEWAY_PORT}{deployment.HEALTH_PATH}",
                        "--cafile", GATEWAY_CA_FILE, "--server-name", tls.INTERNAL_NAME),
                       10, 5, 5, 60)


def _app_environment(app_env: str, log_level: str) -> dict[str, str]:
    env = {
        "APP_ENV": app_env,
        "LOG_LEVEL": log_level,
        "LOG_FORMAT": "json",
        "SECRETS_DIR": SECRETS_DIR,
        "DATA_DIR": f"{TMP}/nilecare",
        "DATABASE_URL": (f"mysql+pymysql://payments@mysql-payment:{deployment.MYSQL_PORT}"
                         "/nilecare_payments"),
        "REDIS_URL": f"redis://default@redis-payment:{deployment.REDIS_PORT}/0",
        "TIMEZONE": "Africa/Khartoum",
        "PROVIDER_SIMULATOR_URL": f"http://payment-provider-simulator:{deployment.SIMULATOR_PORT}",
    }
    # Merchant ids are public identifiers; only keys and secrets travel as secret files.
    env.update({g.merchant_id.upper(): f"nilecare-{g.group.replace('_', '-')}"
                for g in credential_groups()})
    return env


def _processes(plan: _Plan) -> tuple[Service, ...]:
    """The gateway, both workers, the exporter, and the simulator (profile `simulator`)."""
    limits, env, providers = plan.limits, plan.app_env, plan.provider_secrets
    both = ("frontend", "backend")
    worker_health = Healthcheck(("CMD", "nilecare", "healthcheck", "--worker"), 15, 5, 5, 30)
    gateway_port = str(deployment.GATEWAY_PORT)
    return (
        _app_service(
            name="payment-gateway-service",
            # Migrations run before the API serves, so every later process sees the schema at head.
            command=("sh", "-c", "nilecare migrate && exec nilecare serve"),
            # Its port is published on every interface, so it serves HTTPS only; providers
            # (the simulator) call its webhooks by its name on the stack's network.
            environment={**env, "GATEWAY_HOST": ALL_INTERFACES, "GATEWAY_PORT": gateway_port,
                         "GATEWAY_PUBLIC_URL": f"https://{tls.INTERNAL_NAME}:{gateway_port}",
                         "GATEWAY_TLS_CERT_FILE": f"{SECRETS_DIR}/{tls.CERT_SECRET}",
                         "GATEWAY_TLS_KEY_FILE": f"{SECRETS_DIR}/{tls.KEY_SECRET}"},
            secrets=_run_secrets(*CORE_SECRETS, *providers, *TLS_SECRETS),
            ports=(Port(deployment.GATEWAY_PORT, deployment.GATEWAY_PORT, None),),
            healthcheck=_gateway_health(),
            limits=limits["payment-gateway-service"],
            networks=both,
            depends_on=("mysql-payment", "redis-payment"),
            metrics=GATEWAY_METRICS,
            swarm=Replication(3, "GATEWAY_REPLICAS"),
        ),
        _app_service(
            name="payment-worker",
            command=("nilecare", "worker"),
            environment={**env, "METRICS_HOST": ALL_INTERFACES,
                         "WORKER_METRICS_PORT": str(WORKER_METRICS.port)},
            secrets=_run_secrets(*CORE_SECRETS, *providers, "smtp_password"),
            healthcheck=worker_health,
            limits=limits["payment-worker"],
            networks=both,
            depends_on=("payment-gateway-service",),
            metrics=WORKER_METRICS,
            swarm=Replication(2, "WORKER_REPLICAS"),
        ),
        _app_service(
            name="payment-reconciliation-worker",
            command=("nilecare", "reconciliation-worker"),
            environment={**env, "STATEMENT_DIR": STATEMENT_DIR,
                         "METRICS_HOST": ALL_INTERFACES,
                         "RECONCILIATION_METRICS_PORT": str(RECONCILIATION_METRICS.port)},
            secrets=_run_secrets(*CORE_SECRETS, *providers, "aws_secret_access_key",
                                 "smtp_password"),
            # The reconciliation worker beats its own file (a daily job with a waiting loop).
            healthcheck=Healthcheck(
                ("CMD", "nilecare", "healthcheck", "--worker", "--heartbeat",
                 str(deployment.RECONCILIATION_HEARTBEAT)), 15, 5, 5, 30
            ),
            limits=limits["payment-reconciliation-worker"],
            networks=both,
            volumes=(VolumeMount("statements", STATEMENT_DIR),),
            depends_on=("payment-gateway-service",),
            metrics=RECONCILIATION_METRICS,
            swarm=Replication(node_label=STORES_NODE),
        ),
        _app_service(
            name="payment-metrics-exporter",
            command=("nilecare", "exporter"),
            environment={**env, "EXPORTER_HOST": ALL_INTERFACES,
                         "EXPORTER_PORT": str(EXPORTER_METRICS.port)},
            secrets=_run_secrets(*CORE_SECRETS),
            ports=(Port(EXPORTER_METRICS.port, EXPORTER_METRICS.port),),
            healthcheck=_health_url(EXPORTER_METRICS.port, 15, 5, 5, 30),
            limits=limits["payment-metrics-exporter"],
            networks=both,
            depends_on=("payment-gateway-service",),
            metrics=EXPORTER_METRICS,
        ),
        _app_service(
            name="payment-provider-simulator",
            command=("nilecare", "simulator", "--host", ALL_INTERFACES),
            environment={**env, "GATEWAY_HOST": ALL_INTERFACES,
                         "GATEWAY_TLS_CA_FILE": GATEWAY_CA_FILE},
            secrets=_run_secrets(*CORE_SECRETS, *providers, tls.CA_SECRET),
            healthcheck=_health_url(deployment.SIMULATOR_PORT, 10, 5, 5, 20),
            limits=limits["payment-provider-simulator"],
            networks=("frontend",),
            profile="simulator",
        ),
    )


def _stores(plan: _Plan) -> tuple[Service, ...]:
    """MySQL and Redis: on the internal backend network, their host ports on loopback only."""
    publish = plan.publish_backend_ports
    # The database and Redis stay off the frontend whatever happens; the host-access network
    # only carries the host's connections to their 127.0.0.1 ports.
    networks = ("backend", HOST_ACCESS) if publish else ("backend",)
    return (
        Service(
            name="mysql-payment",
            image=MYSQL_IMAGE,
            # Alembic creates triggers as the unprivileged user; with binary logging on, MySQL
            # refuses that unless function creators are trusted.
            # The buffer pool is half the container's memory (the server's default is 128 MB
            # whatever the container holds): the payment and reconciliation indexes stay in
            # memory, and connections, sort buffers and the log buffer keep the other half.
            command=("--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci",
                     "--log-bin-trust-function-creators=1",
                     f"--innodb-buffer-pool-size={_buffer_pool_mb(plan.limits['mysql-payment'])}M"),
            environment={
                "MYSQL_DATABASE": "nilecare_payments",
                "MYSQL_USER": "payments",
                "MYSQL_PASSWORD_FILE": f"{SECRETS_DIR}/database_password",
                "MYSQL_ROOT_PASSWORD_FILE": f"{SECRETS_DIR}/mysql_root_password",
            },
            secrets=_run_secrets("database_password", "mysql_root_password"),
            ports=((Port(deployment.MYSQL_PORT, deployment.MYSQL_HOST_PORT),) if publish
                   else ()),
            healthcheck=Healthcheck(
                ("CMD-SHELL", f'MYSQL_PWD="$(cat {SECRETS_DIR}/database_password)" '
                 "mysql -h 127.0.0.1 -u payments -e 'SELECT 1' nilecare_payments >/dev/null"),
                10, 5, 10, 90,
            ),
            limits=plan.limits["mysql-payment"],
            networks=networks,
            volumes=(VolumeMount("mysql-data", "/var/lib/mysql"),),
            swarm=Replication(node_label=STORES_NODE),
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
                     f'"$(cat {SECRETS_DIR}/redis_password)" > /tmp/redis.conf && '
                     "exec redis-server /tmp/redis.conf --maxmemory 1gb "
                     "--maxmemory-policy allkeys-lru --appendonly no --dir /data"),
            secrets=_run_secrets("redis_password"),
            ports=((Port(deployment.REDIS_PORT, deployment.REDIS_HOST_PORT),) if publish
                   else ()),
            healthcheck=Healthcheck(
                ("CMD-SHELL", f'REDISCLI_AUTH="$(cat {SECRETS_DIR}/redis_password)" '
                 "redis-cli ping | grep -q PONG"),
                10, 5, 5, 10,
            ),
            limits=plan.limits["redis-payment"],
            networks=networks,
            volumes=(VolumeMount("redis-data", "/data"),),
            swarm=Replication(node_label=STORES_NODE),
            user="redis",
            read_only=True,
            tmpfs=(TMP,),
        ),
    )
