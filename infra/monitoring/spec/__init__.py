"""The typed monitoring spec, read and validated from monitoring/thresholds.yaml."""

# document.py reads the whole file; each section's types and reader are in their own module
# (alerts.py, routing.py, dashboards.py).

from __future__ import annotations

from infra.monitoring.node import SpecError
from infra.monitoring.spec.alerts import BurnAlert, BurnWindow, Slo, ThresholdAlert
from infra.monitoring.spec.dashboards import Dashboard, Panel, Row, Target
from infra.monitoring.spec.document import DailySummary, PrometheusSpec, Spec, load, parse
from infra.monitoring.spec.routing import AlertmanagerSpec, Route, Smtp, Tls

__all__ = [
    "AlertmanagerSpec",
    "BurnAlert",
    "BurnWindow",
    "DailySummary",
    "Dashboard",
    "Panel",
    "PrometheusSpec",
    "Route",
    "Row",
    "Slo",
    "Smtp",
    "Spec",
    "SpecError",
    "Target",
    "ThresholdAlert",
    "Tls",
    "load",
    "parse",
]
