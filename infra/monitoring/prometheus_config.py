"""prometheus.yml and the Grafana provisioning files for the compose `monitoring` profile."""

from __future__ import annotations

from typing import Any

from infra.monitoring.rules import rule_files
from infra.monitoring.spec import Spec

DATASOURCE_UID = "nilecare-prometheus"


def prometheus_config(spec: Spec, rules_dir: str = "/etc/prometheus/rules") -> dict[str, Any]:
    p = spec.prometheus
    return {
        "global": {"scrape_interval": str(p.scrape_interval),
                   "evaluation_interval": str(p.evaluation_interval),
                   "external_labels": {"system": spec.service}},
        "rule_files": [f"{rules_dir}/{name}" for name in rule_files(spec)],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [p.alertmanager]}]}]},
        "scrape_configs": [
            {"job_name": job.job, "metrics_path": job.path,
             "static_configs": [{"targets": [job.target]}]}
            for _, job in sorted(p.jobs.items())
        ],
    }


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
