"""prometheus.yml, the file_sd target files and the Grafana provisioning files.

Scrape jobs come from the deployment model (infra/topology/): every service that declares
`metrics` is one job, and its targets are read from `<targets_dir>/<job>.yml`, so another
network (a drill on 127.0.0.1, a swarm) brings its own target files, not its own config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infra import topology
from infra.monitoring.rules import rule_files
from infra.monitoring.spec import Spec
from service import tls

DATASOURCE_UID = "nilecare-prometheus"
ALERTMANAGER_JOB = "alertmanager"
TARGETS = "monitoring/targets"
# Discovery reacts to file changes at once; this re-reads them in case a change was missed.
REFRESH = "30s"


@dataclass(frozen=True)
class Job:
    name: str
    path: str
    target: str  # host:port on the deployment's networks
    scheme: str = "http"
    server_name: str | None = None  # an https target's certificate names this


def jobs(model: topology.Topology | None = None) -> tuple[Job, ...]:
    """Every scrape job of the deployment model, monitoring profile included."""
    model = model or topology.build()
    return tuple(Job(s.metrics.job, s.metrics.path, str(s.scrape_target), s.metrics.scheme,
                     s.metrics.server_name)
                 for s in model.scraped() if s.metrics is not None)


def transport(job: Job, secrets_dir: str) -> dict[str, Any]:
    """An https job's scheme and what its certificate is checked against: the gateway's CA in
    `secrets_dir`, under the service's name (targets are addresses, which the certificate
    need not name). Nothing for an http job."""
    if job.scheme == "http":
        return {}
    tls_config: dict[str, Any] = {"ca_file": f"{secrets_dir}/{tls.CA_SECRET}"}
    if job.server_name:
        tls_config["server_name"] = job.server_name
    return {"scheme": job.scheme, "tls_config": tls_config}


def check_jobs(spec: Spec, known: tuple[Job, ...]) -> None:
    names = {j.name for j in known}
    for alert in spec.alerts:
        if alert.job is not None and alert.job not in names:
            raise ValueError(f"{alert.name} watches job {alert.job!r}, which no service of "
                             f"infra/topology/ declares (jobs: {', '.join(sorted(names))})")


def _file_sd(spec: Spec, job: str) -> list[dict[str, Any]]:
    return [{"files": [f"{spec.prometheus.targets_dir}/{job}.yml"], "refresh_interval": REFRESH}]


def prometheus_config(spec: Spec, known: tuple[Job, ...]) -> dict[str, Any]:
    p = spec.prometheus
    return {
        "global": {"scrape_interval": str(p.scrape_interval),
                   "scrape_timeout": str(p.scrape_timeout),
                   "evaluation_interval": str(p.evaluation_interval),
                   "external_labels": {"system": spec.service}},
        "rule_files": [f"{p.rules_dir}/{name}" for name in rule_files(spec)],
        "alerting": {"alertmanagers": [{"file_sd_configs": _file_sd(spec, ALERTMANAGER_JOB)}]},
        "scrape_configs": [
            {"job_name": job.name, "metrics_path": job.path,
             **transport(job, spec.prometheus.secrets_dir),
             "file_sd_configs": _file_sd(spec, job.name)}
            for job in sorted(known, key=lambda j: j.name)
        ],
    }


# The swarm's Prometheus reads the tasks from the Docker API of the manager it runs on.
DOCKER_SOCKET = "unix:///var/run/docker.sock"
SWARM_REFRESH = "15s"


def _swarm_tasks(spec: Spec, job: Job) -> dict[str, Any]:
    """A scrape job over every running task of the job's service, at its address on the
    frontend overlay, named `<service>.<slot>`: each replica is its own instance."""
    service, port = job.target.rsplit(":", 1)
    return {
        "job_name": job.name, "metrics_path": job.path,
        **transport(job, spec.prometheus.secrets_dir),
        "dockerswarm_sd_configs": [{"host": DOCKER_SOCKET, "role": "tasks", "port": int(port),
                                    "refresh_interval": SWARM_REFRESH}],
        "relabel_configs": [
            {"source_labels": ["__meta_dockerswarm_service_label_com_nilecare_service"],
             "regex": service, "action": "keep"},
            {"source_labels": ["__meta_dockerswarm_task_desired_state"],
             "regex": "running", "action": "keep"},
            # A task has an address on each of its networks; one target per task.
            {"source_labels": ["__meta_dockerswarm_network_label_com_nilecare_network"],
             "regex": "frontend", "action": "keep"},
            {"source_labels": ["__meta_dockerswarm_service_label_com_nilecare_service",
                               "__meta_dockerswarm_task_slot"],
             "separator": ".", "target_label": "instance"},
            {"source_labels": ["__meta_dockerswarm_node_hostname"], "target_label": "node"},
        ],
    }


def swarm_prometheus_config(spec: Spec, known: tuple[Job, ...]) -> dict[str, Any]:
    """prometheus.yml for a swarm: the same rules and Alertmanager, and every job
    discovered from the swarm's tasks (dockerswarm_sd) instead of file_sd targets."""
    document = prometheus_config(spec, known)
    document["scrape_configs"] = [_swarm_tasks(spec, job)
                                  for job in sorted(known, key=lambda j: j.name)]
    return document


def target_files(known: tuple[Job, ...]) -> dict[str, list[dict[str, Any]]]:
    """`monitoring/targets/<job>.yml` for the compose and Pulumi networks."""
    return {f"{TARGETS}/{job.name}.yml": [{"targets": [job.target]}] for job in known}


def grafana_datasource(spec: Spec) -> dict[str, Any]:
    return {"apiVersion": 1, "datasources": [{
        "name": "Prometheus", "uid": DATASOURCE_UID, "type": "prometheus", "access": "proxy",
        "url": "http://prometheus:9090", "isDefault": True, "editable": False,
        "jsonData": {"timeInterval": str(spec.prometheus.scrape_interval)},
    }]}


def grafana_dashboards() -> dict[str, Any]:
    return {"apiVersion": 1, "providers": [{
        "name": "nilecare", "folder": "NileCare Payments", "type": "file",
        "disableDeletion": True, "allowUiUpdates": False,
        "options": {"path": "/var/lib/grafana/dashboards"},
    }]}
