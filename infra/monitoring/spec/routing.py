"""The spec's Alertmanager section: receivers, routes by severity, SMTP and the fast route."""

from __future__ import annotations

from dataclasses import dataclass

from infra.monitoring.duration import Duration
from infra.monitoring.node import Cursor
from infra.monitoring.spec.alerts import SEVERITIES


@dataclass(frozen=True)
class Route:
    receiver: str
    group_wait: Duration
    group_interval: Duration
    repeat_interval: Duration
    send_resolved: bool
    response_target: Duration
    digest: bool = False


@dataclass(frozen=True)
class Tls:
    ca_file: str | None = None
    server_name: str | None = None
    insecure_skip_verify: bool = False


@dataclass(frozen=True)
class Smtp:
    smarthost: str
    from_: str
    to: str
    username: str
    require_tls: bool
    tls: Tls | None = None


@dataclass(frozen=True)
class AlertmanagerSpec:
    templates_dir: str
    secrets_dir: str
    pagerduty_url: str
    slack_channel: str
    smtp: Smtp
    heartbeat_url: str
    routes: dict[str, Route]
    fast_alert: str
    fast_group_wait: Duration


def _route(c: Cursor) -> Route:
    c.only("receiver", "group_wait", "group_interval", "repeat_interval", "send_resolved",
           "response_target", "digest")
    return Route(
        c.get("receiver").name(), c.get("group_wait").duration(),
        c.get("group_interval").duration(), c.get("repeat_interval").duration(),
        c.get("send_resolved").boolean(), c.get("response_target").duration(),
        c.get("digest").boolean() if c.has("digest") else False,
    )


def _tls(c: Cursor) -> Tls:
    c.only("ca_file", "server_name", "insecure_skip_verify")
    return Tls(c.get("ca_file").text() if c.has("ca_file") else None,
               c.get("server_name").text() if c.has("server_name") else None,
               c.get("insecure_skip_verify").boolean() if c.has("insecure_skip_verify") else False)


def parse_alertmanager(c: Cursor) -> AlertmanagerSpec:
    c.only("templates_dir", "secrets_dir", "pagerduty_url", "slack_channel", "smtp",
           "heartbeat_url", "routes", "fast_route")
    s = c.get("smtp")
    s.only("smarthost", "from", "to", "username", "require_tls", "tls")
    routes = {key: _route(r) for key, r in c.get("routes").mapping()}
    for key in (*SEVERITIES, "summary", "heartbeat"):
        if key not in routes:
            c.get("routes").fail(f"missing route '{key}'")
    beat = routes["heartbeat"]
    if beat.repeat_interval >= beat.group_interval:
        c.get("routes").get("heartbeat").get("repeat_interval").fail(
            "must be shorter than group_interval, so that every flush sends a beat (with equal "
            "intervals a flush that comes a moment early skips it: a beat every 2 intervals)")
    fast = c.get("fast_route")
    fast.only("alert", "group_wait")
    return AlertmanagerSpec(
        templates_dir=c.get("templates_dir").text(),
        secrets_dir=c.get("secrets_dir").text(),
        pagerduty_url=c.get("pagerduty_url").text(),
        slack_channel=c.get("slack_channel").text(),
        smtp=Smtp(s.get("smarthost").text(), s.get("from").text(), s.get("to").text(),
                  s.get("username").text(), s.get("require_tls").boolean(),
                  _tls(s.get("tls")) if s.has("tls") else None),
        heartbeat_url=c.get("heartbeat_url").text(),
        routes=routes,
        fast_alert=fast.get("alert").name(),
        fast_group_wait=fast.get("group_wait").duration(),
    )

