"""Monitoring as code: monitoring/thresholds.yaml rendered into rules, routes and dashboards."""
