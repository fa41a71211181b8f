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
    }
    if am.slack_api_url:
        slack["api_url"] = am.slack_api_url
    else:
        slack["api_url_file"] = _secret(spec, "slack_webhook_url")

    def email(key: str, subject: str) -> dict[str, Any]:
        return {"name": routes[key].receiver, "email_configs": [{
            "to": am.smtp.to, "from": am.smtp.from_, "smarthost": am.smtp.smarthost,
            "auth_username": am.smtp.username,
            "auth_password_file": _secret(spec, "smtp_password"),
            "require_tls": am.smtp.require_tls, "send_resolved": routes[key].send_resolved,
            "headers": {"Subject": subject},
            "html": '{{ template "nilecare.html" . }}', "text": text,
        }]}

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
        "inhibit_rules": [
            # `equal` treats a label missing on both sides as equal, so both sides must
            # carry a provider or one critical alert would silence every non-provider alert.
            {"source_matchers": ['severity="critical"', PROVIDER_ALERTS],
             "target_matchers": ['severity=~"high|medium"', PROVIDER_ALERTS],
             "equal": ["provider"]},
            # A service-wide critical (no provider label) silences the whole service; a
            # provider's critical only that provider, by the rule above.
            {"source_matchers": ['severity="critical"', 'provider=""'],
             "target_matchers": ['severity=~"high|medium"'], "equal": ["service"]},
            # Every provider looks broken while the gateway that calls them is down.
            {"source_matchers": [f'alertname="{_gateway_down(spec)}"'],
             "target_matchers": [PROVIDER_ALERTS]},
        ],
        "receivers": _receivers(spec),
        "time_intervals": [{"name": DIGEST_INTERVAL, "time_intervals": [{
            "times": [{"start_time": daily.start, "end_time": daily.end}],
            "location": daily.location}]}],
    }


def _gateway_down(spec: Spec) -> str:
    for alert in spec.alerts:
        if alert.signal == "gateway_up":
            return alert.name
    raise ValueError("the spec has no gateway_up alert, so nothing can silence provider alerts")


def route_cases(spec: Spec) -> list[dict[str, Any]]:
    """For every alert: a label set it fires with and the receiver it must reach."""
    routes = spec.alertmanager.routes
    cases: list[dict[str, Any]] = []
    for a in spec.alerts:
        labels = {"alertname": a.name, "severity": a.severity, "service": a.service,
                  **SIGNALS[a.signal].labels(spec)}
        cases.append({"labels": labels, "receiver": routes[a.severity].receiver})
    for b in spec.slo.burn_alerts:
        cases.append({"labels": {"alertname": b.name, "severity": b.severity,
                                 "service": "payment-gateway-service"},
                      "receiver": routes[b.severity].receiver})
    for x in spec.absent:
        cases.append({"labels": {"alertname": x.name, "severity": x.severity,
                                 "service": x.service, **x.selector},
                      "receiver": routes[x.severity].receiver})
    cases.append({"labels": {"alertname": "Watchdog", "severity": "none", "service": "prometheus"},
                  "receiver": routes["heartbeat"].receiver})
    cases.append({"labels": {"alertname": spec.daily_summary.name, "severity": "info",
                             "service": spec.service},
                  "receiver": routes["summary"].receiver})
    return cases
