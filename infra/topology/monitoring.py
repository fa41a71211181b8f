"""The monitoring profile's services: Prometheus, Alertmanager and Grafana, on the config
`make render` generates from monitoring/thresholds.yaml."""

from __future__ import annotations

from collections.abc import Mapping

from infra.topology.catalogue import (
    ALERTMANAGER_IMAGE,
    ALERTMANAGER_SECRETS_DIR,
    GRAFANA_IMAGE,
    MONITORING_NODE,
    PROMETHEUS_IMAGE,
    PROMETHEUS_SECRETS_DIR,
)
from infra.topology.model import (
    FileMount,
    Healthcheck,
    Limits,
    Metrics,
    Port,
    Replication,
    SecretMount,
    Service,
    VolumeMount,
)
from service import tls


def monitoring(limits: Mapping[str, Limits]) -> tuple[Service, ...]:
    """Prometheus, Alertmanager and Grafana (profile `monitoring`) on the generated config."""
    return (
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
            # The gateway's CA: its scrapes are HTTPS (thresholds.yaml prometheus.secrets_dir).
            secrets=(SecretMount(tls.CA_SECRET, f"{PROMETHEUS_SECRETS_DIR}/{tls.CA_SECRET}"),),
            swarm=Replication(node_label=MONITORING_NODE),
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
            swarm=Replication(node_label=MONITORING_NODE),
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
            swarm=Replication(node_label=MONITORING_NODE),
            files=(FileMount("monitoring/grafana/provisioning", "/etc/grafana/provisioning"),
                   FileMount("monitoring/dashboards", "/var/lib/grafana/dashboards")),
            depends_on=("prometheus",),
            profile="monitoring",
        ),
    )
