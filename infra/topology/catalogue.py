"""The deployment catalogue: names, paths, images, secrets and sizes the construction
(build.py) reads. Ports and the paths the processes share with it come from
service/deployment.py; the providers' secrets from the provider catalogue."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from infra.topology.model import Image, Limits, Metrics, Secret, SecretKind, Sizing
from service import deployment, tls
from service.domain.catalog import credential_groups

PROJECT = "nilecare"
SECRETS_DIR = str(deployment.SECRETS_DIR)
ALERTMANAGER_SECRETS_DIR = "/etc/alertmanager/secrets"
PROMETHEUS_SECRETS_DIR = "/etc/prometheus/secrets"
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
# Docker binds no published port of a container that is only on internal networks, so MySQL and
# Redis join this one as well when their ports are published (and only then).
HOST_ACCESS = "host-access"

# The swarm node labels (set to true) that pin services to the node holding their volumes.
STORES_NODE = "nilecare.stores"
MONITORING_NODE = "nilecare.monitoring"
EDGE_NODE = "nilecare.edge"

# Where Prometheus scrapes each process (job, container port).
GATEWAY_METRICS = Metrics("payment-gateway", deployment.GATEWAY_PORT, scheme="https",
                          server_name=tls.INTERNAL_NAME)
WORKER_METRICS = Metrics("payment-worker", deployment.WORKER_METRICS_PORT)
RECONCILIATION_METRICS = Metrics("payment-reconciliation-worker",
                                 deployment.RECONCILIATION_METRICS_PORT)
EXPORTER_METRICS = Metrics("payment-metrics-exporter", deployment.EXPORTER_PORT)

NILECARE_IMAGE = Image("NILECARE_IMAGE", "nilecare-payments:latest")
MYSQL_IMAGE = Image("MYSQL_IMAGE", "mysql:8.4")
REDIS_IMAGE = Image("REDIS_IMAGE", "redis:7.4")
PROMETHEUS_IMAGE = Image("PROMETHEUS_IMAGE", "prom/prometheus:v2.53.4")
ALERTMANAGER_IMAGE = Image("ALERTMANAGER_IMAGE", "prom/alertmanager:v0.27.0")
GRAFANA_IMAGE = Image("GRAFANA_IMAGE", "grafana/grafana:11.6.0")
EDGE_IMAGE = Image("EDGE_IMAGE", "haproxy:2.8")


def secret_catalogue() -> tuple[Secret, ...]:
    """Every secret of the stack, the providers' read from their catalogue at call time."""
    return (*_FIXED_SECRETS[:6], *provider_secrets(), *_FIXED_SECRETS[6:])


def provider_secrets() -> tuple[Secret, ...]:
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
    Secret(tls.CA_SECRET, SecretKind.CERTIFICATE,
           description="CA certificate(s) the gateway's callers trust (PEM)"),
    Secret(tls.CERT_SECRET, SecretKind.CERTIFICATE,
           description="the gateway's TLS certificate chain (PEM)"),
    Secret(tls.KEY_SECRET, SecretKind.CERTIFICATE,
           description="the gateway's TLS private key (PEM, unencrypted)"),
)
SECRETS = secret_catalogue()  # the current catalogue's, for readers that need no other

# The gateway's TLS files (service/tls.py) and where a process finds the CA that signed them.
TLS_SECRETS = (tls.CA_SECRET, tls.CERT_SECRET, tls.KEY_SECRET)
GATEWAY_CA_FILE = f"{SECRETS_DIR}/{tls.CA_SECRET}"

CORE_SECRETS = ("database_password", "redis_password", "jwt_secret", "webhook_secret",
                 "encryption_key")

SIZES: Mapping[Sizing, Mapping[str, Limits]] = MappingProxyType({
    "small": MappingProxyType({
        "payment-gateway-service": Limits(512, 1.0),
        "payment-worker": Limits(384, 0.5),
        "mysql-payment": Limits(1536, 1.0),
        # Above Redis's own 1 GB maxmemory, so Redis evicts before the kernel kills it.
        "redis-payment": Limits(1280, 0.5),
        "payment-reconciliation-worker": Limits(384, 0.5),
        "payment-metrics-exporter": Limits(256, 0.25),
        # It answers for all twelve providers under load tests; throttled to a quarter core,
        # its healthcheck timed out and a swarm replaced it, forgetting every charge.
        "payment-provider-simulator": Limits(256, 1.0),
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
        "payment-provider-simulator": Limits(256, 1.0),
        "prometheus": Limits(2048, 1.0),
        "alertmanager": Limits(256, 0.25),
        "grafana": Limits(768, 1.0),
    }),
})
