"""Alertmanager configuration, notification templates and route tests generated from the spec."""

from __future__ import annotations

from typing import Any

from infra.monitoring.signals import SIGNALS
from infra.monitoring.spec import Route, Spec

DIGEST_INTERVAL = "daily-digest"
PROVIDER_ALERTS = 'provider=~".+"'

TEMPLATES = """\
{{ define "nilecare.title" -}}
[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{ .Alerts.Firing | len }}{{ end }}]
{{- " " }}{{ .CommonLabels.alertname }}
{{- with .CommonLabels.provider }} ({{ . }}){{ end }}
{{- end }}

{{ define "nilecare.text" -}}
{{ range .Alerts -}}
{{ if eq .Status "resolved" }}RESOLVED: {{ end }}{{ .Annotations.summary }}
{{ .Annotations.description }}
Severity: {{ .Labels.severity }}  Service: {{ .Labels.service }}
{{- with .Labels.provider }}  Provider: {{ . }}{{ end }}
Runbook: {{ .Annotations.runbook_url }}
{{ end -}}
{{ end }}

{{ define "nilecare.html" -}}
{{ range .Alerts -}}
<h3>{{ if eq .Status "resolved" }}RESOLVED: {{ end }}{{ .Annotations.summary }}</h3>
<pre>{{ .Annotations.description }}</pre>
<p>Severity: {{ .Labels.severity }}, service: {{ .Labels.service }}
{{- with .Labels.provider }}, provider: {{ . }}{{ end }}</p>
<p><a href="{{ .Annotations.runbook_url }}">Runbook: {{ .Annotations.runbook_url }}</a></p>
{{ end -}}
{{ end }}
"""


def _timing(route: Route) -> dict[str, str]:
    return {"group_wait": str(route.group_wait), "group_interval": str(route.group_interval),
            "repeat_interval": str(route.repeat_interval)}


def _route(spec: Spec, key: str, matchers: list[str]) -> dict[str, Any]:
    route = spec.alertmanager.routes[key]
    out: dict[str, Any] = {"receiver": route.receiver, "matchers": matchers, **_timing(route)}
    if route.digest:
        out["active_time_intervals"] = [DIGEST_INTERVAL]
    return out


def _secret(spec: Spec, name: str) -> str:
    return f"{spec.alertmanager.secrets_dir}/{name}"


def _receivers(spec: Spec) -> list[dict[str, Any]]:
    am = spec.alertmanager
    routes = am.routes
    text = '{{ template "nilecare.text" . }}'
    slack: dict[str, Any] = {
        "channel": am.slack_channel, "send_resolved": routes["high"].send_resolved,
        "title": '{{ template "nilecare.title" . }}', "text": text,
        "api_url_file": _secret(spec, "slack_webhook_url"),
    }
    tls: dict[str, Any] = {}
    if am.smtp.tls is not None:
        tls = {key: value for key, value in (
            ("ca_file", am.smtp.tls.ca_file), ("server_name", am.smtp.tls.server_name),
            ("insecure_skip_verify", am.smtp.tls.insecure_skip_verify)) if value is not None}

    def email(key: str, subject: str) -> dict[str, Any]:
        config: dict[str, Any] = {
            "to": am.smtp.to, "from": am.smtp.from_, "smarthost": am.smtp.smarthost,
            "auth_username": am.smtp.username,
            "auth_password_file": _secret(spec, "smtp_password"),
            "require_tls": am.smtp.require_tls, "send_resolved": routes[key].send_resolved,
            "headers": {"Subject": subject},
            "html": '{{ template "nilecare.html" . }}', "text": text,
        }
        if tls:
            config["tls_config"] = tls
        return {"name": routes[key].receiver, "email_configs": [config]}

    return [
        {"name": routes["critical"].receiver, "pagerduty_configs": [{
            "routing_key_file": _secret(spec, "pagerduty_routing_key"), "url": am.pagerduty_url,
            "send_resolved": routes["critical"].send_resolved, "severity": "critical",
            "description": '{{ template "nilecare.title" . }}',
            "details": {"summary": '{{ .CommonAnnotations.summary }}', "text": text,
                        "runbook_url": '{{ .CommonAnnotations.runbook_url }}'},
        }]},
        {"name": routes["high"].receiver, "slack_configs": [slack]},
        email("medium", '{{ template "nilecare.title" . }}'),
        email("summary", "NileCare payments daily summary"),
        {"name": routes["heartbeat"].receiver, "webhook_configs": [
            {"url": am.heartbeat_url, "send_resolved": False}]},
    ]


def config(spec: Spec) -> dict[str, Any]:
    am = spec.alertmanager
    daily = spec.daily_summary
    fast = {**_route(spec, "critical", [f'alertname="{am.fast_alert}"']),
            "group_wait": str(am.fast_group_wait)}
    return {
        "global": {"resolve_timeout": "5m"},
        "templates": [f"{am.templates_dir}/*.tmpl"],
        "route": {
            # Anything no child route claims still reaches a human, on Slack.
            "receiver": am.routes["high"].receiver,
            "group_by": ["alertname", "service", "provider"],
            **_timing(am.routes["high"]),
            "routes": [
                _route(spec, "heartbeat", ['alertname="Watchdog"']),
                _route(spec, "summary", [f'alertname="{daily.name}"']),
                fast,
                _route(spec, "critical", ['severity="critical"']),
                _route(spec, "high", ['severity="high"']),
                _route(spec, "medium", ['severity="medium"']),
            ],
        },
        "inhibit_rules": inhibit_rules(spec),
        "receivers": _receivers(spec),
        "time_intervals": [{"name": DIGEST_INTERVAL, "time_intervals": [{
            "times": [{"start_time": daily.start, "end_time": daily.end}],
            "location": daily.location}]}],
    }


def _named(names: list[str]) -> str:
    return f'alertname=~"{"|".join(names)}"'


def _by_signal(spec: Spec, signal: str, job: str | None = None) -> str | None:
    for alert in spec.alerts:
        if alert.signal == signal and (job is None or alert.job == job):
            return alert.name
    return None  # a cut-down drill spec: nothing to inhibit by


def inhibit_rules(spec: Spec) -> list[dict[str, Any]]:
    """Only what makes another alert meaningless may silence it: one outage pages once, and
    no alert is hidden by an unrelated one."""
    rules: list[dict[str, Any]] = [
        # A provider's critical alert (down, failing payments) hides its own lesser alerts.
        # `equal` treats a label missing on both sides as equal, so both sides must carry one.
        {"source_matchers": ['severity="critical"', PROVIDER_ALERTS],
         "target_matchers": ['severity=~"high|medium"', PROVIDER_ALERTS],
         "equal": ["provider"]},
    ]
    gateway = _by_signal(spec, "target_up", "payment-gateway")
    if gateway is not None:
        # Every provider looks broken while the gateway that calls them is down.
        rules.append({"source_matchers": [f'alertname="{gateway}"'],
                      "target_matchers": [PROVIDER_ALERTS]})
    database = _by_signal(spec, "database_up")
    from_database = [a.name for a in spec.alerts
                     if SIGNALS[a.signal].source == "exporter" and a.name != database]
    if database is not None and from_database:
        # What the exporter reads from the database says nothing while the database is down.
        rules.append({"source_matchers": [f'alertname="{database}"'],
                      "target_matchers": [_named(from_database)]})
    return rules


def route_cases(spec: Spec) -> list[dict[str, Any]]:
    """For every alert: a label set it fires with and the receiver it must reach."""
    routes = spec.alertmanager.routes
    cases: list[dict[str, Any]] = []
    for a in spec.alerts:
        labels = {"alertname": a.name, "severity": a.severity, "service": a.service,
                  **SIGNALS[a.signal].labels(spec, a)}
        cases.append({"labels": labels, "receiver": routes[a.severity].receiver})
    for b in spec.slo.burn_alerts:
        for window in b.windows:
            cases.append({"labels": {"alertname": b.name, "severity": b.severity,
                                     "service": b.service, "window": str(window.long)},
                          "receiver": routes[b.severity].receiver})
    cases.append({"labels": {"alertname": "Watchdog", "severity": "none", "service": "prometheus"},
                  "receiver": routes["heartbeat"].receiver})
    cases.append({"labels": {"alertname": spec.daily_summary.name, "severity": "info",
                             "service": spec.service},
                  "receiver": routes["summary"].receiver})
    return cases
