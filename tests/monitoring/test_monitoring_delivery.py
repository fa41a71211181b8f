"""Delivery: real Prometheus and Alertmanager run the generated files end to end.

Prometheus loads the generated rules and scrapes two targets built from service.metrics
(gateway and exporter registries) whose values the test sets. Alertmanager runs the
generated config with PagerDuty, Slack and the heartbeat pointed at a local HTTP sink and
email at an aiosmtpd sink. The spec is the committed one, re-timed through the same
generator so the whole run takes about a minute.
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
import json
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from prometheus_client import CollectorRegistry, start_http_server

from infra.monitoring.duration import Duration
from infra.monitoring.prometheus_config import prometheus_config
from infra.monitoring.render import render, write
from infra.monitoring.spec import Job, Spec
from service import metrics

pytestmark = pytest.mark.e2e

SHORT = Duration.parse("3s")
PD_KEY = "test-routing-key-0123456789abcdef"
SMTP_PASSWORD = "s3cret-smtp"
WAIT = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for(what: str, check: Callable[[], Any], timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


# --- sinks ---------------------------------------------------------------------------------
@dataclass
class HttpSink:
    """Records every POST body by path (PagerDuty, Slack, heartbeat all land here)."""

    port: int
    posts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def at(self, path: str) -> list[dict[str, Any]]:
        return [body for p, body in list(self.posts) if p == path]


def _handler(sink: HttpSink) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            sink.posts.append((self.path, json.loads(body or b"{}")))
            self.send_response(202)
            self.end_headers()
            self.wfile.write(b'{"status": "success"}')

        def log_message(self, *args: object) -> None:
            return

    return Handler


class MailSink:
    """Keeps each message delivered over SMTP; requires the password from the secret file."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.logins: list[str] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:  # noqa: N802
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, email.message.EmailMessage)
        self.messages.append(msg)
        return "250 OK"

    def authenticate(self, server: object, session: object, envelope: object, mechanism: str,
                     auth_data: object) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data.password == SMTP_PASSWORD.encode()
        if ok:
            self.logins.append(auth_data.login.decode())  # type: ignore[union-attr]
        return AuthResult(success=ok)

    def text(self, msg: email.message.EmailMessage) -> str:
        part = msg.get_body(preferencelist=("plain", "html"))
        return part.get_content() if part is not None else ""


# --- the controlled targets ----------------------------------------------------------------
class Targets:
    """The service's own metric declarations on two registries, as gateway and exporter."""

    def __init__(self) -> None:
        self.gateway_registry = CollectorRegistry()
        self.exporter_registry = CollectorRegistry()
        self.gateway = metrics.EventMetrics(self.gateway_registry)
        self.g = {spec.name: metrics.gauge(spec, self.exporter_registry)
                  for spec in metrics.ALL if spec.process == "exporter"}
        self.gateway_port = free_port()
        self.exporter_port = free_port()
        self._servers = [
            start_http_server(self.gateway_port, "127.0.0.1", self.gateway_registry),
            start_http_server(self.exporter_port, "127.0.0.1", self.exporter_registry),
        ]
        self._stop = threading.Event()
        self._traffic = threading.Thread(target=self._drive, daemon=True)
        self.healthy()
        self._traffic.start()

    def healthy(self) -> None:
        g = self.g
        g["nilecare_database_up"].set(1)
        g["nilecare_exporter_scrape_duration_seconds"].set(0.05)
        g["nilecare_pending_verification_oldest_age_seconds"].set(120)
        g["nilecare_reconciliation_unresolved_issues"].labels("amount_mismatch").set(3)
        for provider in ("visa", "mtn_money", "zain_cash"):
            g["nilecare_provider_up"].labels(provider).set(1)
            g["nilecare_pending_verifications"].labels(provider).set(2)
            g["nilecare_payments"].labels(provider, "confirmed").set(40)
            g["nilecare_payments"].labels(provider, "failed").set(1)
            g["nilecare_revenue_today"].labels(provider, "SDG").set(1000)
            g["nilecare_fees_today"].labels(provider, "SDG").set(15)
            g["nilecare_refunds_today"].labels(provider, "SDG").set(50)
            for window in ("5m", "1h", "24h"):
                g["nilecare_provider_success_ratio"].labels(provider, window).set(0.99)
                g["nilecare_provider_response_time_avg_seconds"].labels(provider, window).set(0.3)
                g["nilecare_provider_transactions"].labels(provider, window).set(500)
                g["nilecare_provider_calls"].labels(provider, window).set(520)

    def _drive(self) -> None:
        """Steady healthy traffic on the gateway counters: 1% failures, fast processing."""
        gw = self.gateway
        while not self._stop.wait(0.2):
            gw.payments_created.labels("visa", "SDG").inc(5)
            gw.payments_completed.labels("visa", "confirmed").inc(99)
            gw.payments_completed.labels("visa", "failed").inc(1)
            gw.processing_duration.labels("visa").observe(2.0)
            gw.provider_requests.labels("visa", "charge", "success").inc()
            gw.provider_duration.labels("visa", "charge").observe(0.2)
            gw.webhooks.labels("visa", "accepted").inc()
            gw.http_requests.labels("POST", "/api/v1/payments", "201").inc()
            gw.http_duration.labels("POST", "/api/v1/payments").observe(0.05)
            gw.idempotency.labels("new").inc()

    def close(self) -> None:
        self._stop.set()
        for server, thread in self._servers:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


# --- the stack -----------------------------------------------------------------------------
def variant_spec(spec: Spec, tmp: Path, ports: dict[str, int], sink: HttpSink) -> Spec:
    """The committed spec re-timed for a one-minute run and pointed at the local sinks."""
    am = spec.alertmanager
    fast = {"group_wait": Duration.parse("1s"), "group_interval": Duration.parse("2s"),
            "repeat_interval": Duration.parse("1h")}
    routes = {k: dataclasses.replace(r, **fast) for k, r in am.routes.items()}
    jobs = {
        "gateway": dataclasses.replace(spec.prometheus.jobs["gateway"],
                                       target=f"127.0.0.1:{ports['gateway']}"),
        "exporter": dataclasses.replace(spec.prometheus.jobs["exporter"],
                                        target=f"127.0.0.1:{ports['exporter']}"),
        "alertmanager": Job("alertmanager", f"127.0.0.1:{ports['alertmanager']}", "/metrics"),
    }
    return dataclasses.replace(
        spec,
        prometheus=dataclasses.replace(
            spec.prometheus, scrape_interval=Duration.parse("1s"),
            evaluation_interval=Duration.parse("1s"),
            alertmanager=f"127.0.0.1:{ports['alertmanager']}", jobs=jobs),
        alerts=tuple(dataclasses.replace(a, for_=SHORT) for a in spec.alerts),
        daily_summary=dataclasses.replace(spec.daily_summary, start="00:00", end="24:00",
                                          location="UTC"),
        alertmanager=dataclasses.replace(
            am, secrets_dir=str(tmp / "secrets"), pagerduty_url=sink.url("/pagerduty"),
            heartbeat_url=sink.url("/heartbeat"),
            smtp=dataclasses.replace(am.smtp, smarthost=f"127.0.0.1:{ports['smtp']}",
                                     require_tls=False),
            routes=routes, fast_group_wait=Duration.parse("1s")),
    )


def _start(cmd: list[str], log: Path, ready: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT)

    def up() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"{cmd[0]} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            return httpx.get(ready, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(f"{cmd[0]} to be ready", up, timeout=30)
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@dataclass
class Stack:
    spec: Spec
    targets: Targets
    sink: HttpSink
    mail: MailSink
    prometheus_url: str

    def query(self, expr: str) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.prometheus_url}/api/v1/query", params={"query": expr}, timeout=5)
        r.raise_for_status()
        data: list[dict[str, Any]] = r.json()["data"]["result"]
        return data


@pytest.fixture(scope="module")
def stack(spec: Spec, which: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prometheus_bin = which.tool("prometheus")
    alertmanager_bin = which.tool("prometheus-alertmanager")
    tmp = tmp_path_factory.mktemp("delivery")
    targets = Targets()
    mail = MailSink()
    ports = {"gateway": targets.gateway_port, "exporter": targets.exporter_port,
             "alertmanager": free_port(), "prometheus": free_port(), "smtp": free_port(),
             "sink": free_port(), "cluster": free_port()}
    sink = HttpSink(ports["sink"])
    http = ThreadingHTTPServer(("127.0.0.1", ports["sink"]), _handler(sink))
    threading.Thread(target=http.serve_forever, daemon=True).start()
    # PLAIN only: aiosmtpd's LOGIN prompts are not the "Username:" Alertmanager expects.
    smtp = Controller(mail, hostname="127.0.0.1", port=ports["smtp"],
                      authenticator=mail.authenticate, auth_require_tls=False,
                      auth_exclude_mechanism=["LOGIN"])
    smtp.start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        variant = variant_spec(spec, tmp, ports, sink)
        (tmp / "secrets").mkdir()
        (tmp / "secrets/pagerduty_routing_key").write_text(PD_KEY + "\n")
        (tmp / "secrets/slack_webhook_url").write_text(sink.url("/slack") + "\n")
        (tmp / "secrets/smtp_password").write_text(SMTP_PASSWORD)
        write(render(variant), tmp)
        config = prometheus_config(variant, rules_dir=str(tmp / "monitoring/rules"))
        (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
        am = f"127.0.0.1:{ports['alertmanager']}"
        procs.append(_start([
            alertmanager_bin, f"--config.file={tmp / 'alertmanager/alertmanager.yml'}",
            f"--storage.path={tmp / 'am-data'}", f"--web.listen-address={am}",
            f"--cluster.listen-address=127.0.0.1:{ports['cluster']}",
            "--cluster.peer-timeout=1s", "--log.level=debug",
        ], tmp / "alertmanager.log", f"http://{am}/-/ready"))
        prom = f"127.0.0.1:{ports['prometheus']}"
        procs.append(_start([
            prometheus_bin, f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'prom-data'}", f"--web.listen-address={prom}",
            "--rules.alert.resend-delay=2s",
        ], tmp / "prometheus.log", f"http://{prom}/-/ready"))
        yield Stack(variant, targets, sink, mail, f"http://{prom}")
    finally:
        for proc in reversed(procs):
            _stop(proc)
        smtp.stop()
        http.shutdown()
        http.server_close()
        targets.close()


# --- the tests -----------------------------------------------------------------------------
def _pd(stack: Stack, alertname: str, action: str) -> list[dict[str, Any]]:
    return [b for b in stack.sink.at("/pagerduty")
            if b.get("event_action") == action and alertname in json.dumps(b)]


def _slack(stack: Stack, needle: str) -> list[dict[str, Any]]:
    return [b for b in stack.sink.at("/slack") if needle in json.dumps(b)]


def _runbook(stack: Stack, name: str) -> str:
    alert = next(a for a in stack.spec.alerts if a.name == name)
    return stack.spec.runbook_url(alert.runbook)


def test_watchdog_reaches_the_heartbeat_receiver(stack: Stack) -> None:
    body = wait_for("the Watchdog heartbeat", lambda: stack.sink.at("/heartbeat"))[0]
    assert [a["labels"]["alertname"] for a in body["alerts"]] == ["Watchdog"]


def test_critical_pages_pagerduty_and_resolves(stack: Stack) -> None:
    db = stack.targets.g["nilecare_database_up"]
    db.set(0)
    event = wait_for("PagerDuty trigger", lambda: _pd(stack, "PaymentDatabaseDown", "trigger"))[0]
    assert event["routing_key"] == PD_KEY  # read from routing_key_file
    text = json.dumps(event)
    assert "Payment database is unavailable" in text
    assert _runbook(stack, "PaymentDatabaseDown") in text
    assert "nilecare_database_up = 0" in text  # the description shows the value
    db.set(1)
    wait_for("PagerDuty resolve", lambda: _pd(stack, "PaymentDatabaseDown", "resolve"))
    assert not _slack(stack, "PaymentDatabaseDown")
    assert not [m for m in stack.mail.messages if "PaymentDatabaseDown" in stack.mail.text(m)]


def test_high_posts_to_slack_and_resolves(stack: Stack) -> None:
    pending = stack.targets.g["nilecare_pending_verifications"].labels("zain_cash")
    pending.set(150)  # plus 2 + 2 pending on the other providers: 154 in total
    body = wait_for("Slack firing", lambda: [
        b for b in _slack(stack, "PendingVerificationsHigh") if "[FIRING" in json.dumps(b)])[0]
    assert body["channel"] == stack.spec.alertmanager.slack_channel
    text = body["attachments"][0]["text"]
    assert "More than 100 payments are waiting for verification" in text
    assert "154 payments are waiting for verification (threshold 100)" in text
    assert _runbook(stack, "PendingVerificationsHigh") in text
    pending.set(2)
    wait_for("Slack resolved", lambda: [
        b for b in _slack(stack, "PendingVerificationsHigh") if "[RESOLVED" in json.dumps(b)])
    assert not _pd(stack, "PendingVerificationsHigh", "trigger")


def test_medium_is_emailed_without_a_resolved_notice(stack: Stack) -> None:
    issues = stack.targets.g["nilecare_reconciliation_unresolved_issues"].labels("amount_mismatch")
    issues.set(60)

    def mails() -> list[email.message.EmailMessage]:
        return [m for m in stack.mail.messages if "ReconciliationIssuesHigh" in str(m["Subject"])]

    msg = wait_for("the reconciliation email", mails)[0]
    body = stack.mail.text(msg)
    assert msg["To"] == stack.spec.alertmanager.smtp.to
    assert "More than 50 reconciliation issues are unresolved" in body
    assert "60 reconciliation issues are unresolved" in body
    assert _runbook(stack, "ReconciliationIssuesHigh") in body
    assert stack.mail.logins == [stack.spec.alertmanager.smtp.username] * len(stack.mail.logins)
    issues.set(3)
    # Medium is a next-day digest: on-call does not want a second mail when it clears. Wait
    # until Prometheus has stopped reporting it, then several group intervals more.
    wait_for("the alert to clear", lambda: not stack.query(
        'ALERTS{alertname="ReconciliationIssuesHigh"}'))
    time.sleep(8)
    assert len(mails()) == 1
    assert not [m for m in mails() if "RESOLVED" in stack.mail.text(m)]


def test_daily_summary_email_carries_the_numbers(stack: Stack) -> None:
    msg = wait_for("the daily summary", lambda: [
        m for m in stack.mail.messages if m["Subject"] == "NileCare payments daily summary"])[0]
    body = stack.mail.text(msg)
    assert "Payments in the database: 123" in body
    assert "Revenue today (SDG): 3000.00" in body


def test_critical_provider_alert_inhibits_high_for_the_same_provider(stack: Stack) -> None:
    g = stack.targets.g
    g["nilecare_provider_up"].labels("mtn_money").set(0)
    wait_for("PaymentProviderDown on PagerDuty", lambda: [
        e for e in _pd(stack, "PaymentProviderDown", "trigger") if "mtn_money" in json.dumps(e)])
    # Now both providers degrade; only visa, which is not down, may reach Slack.
    for provider in ("mtn_money", "visa"):
        g["nilecare_provider_success_ratio"].labels(provider, "5m").set(0.5)
    visa = wait_for("visa degraded on Slack", lambda: [
        b for b in _slack(stack, "PaymentProviderDegraded") if "visa" in json.dumps(b)])
    assert "Only 50% of calls to visa succeeded" in json.dumps(visa)
    firing = wait_for("mtn_money degraded firing in Prometheus", lambda: stack.query(
        'ALERTS{alertname="PaymentProviderDegraded", provider="mtn_money", alertstate="firing"}'))
    assert firing
    time.sleep(5)  # several group intervals: long enough for a leak to show
    assert not [b for b in _slack(stack, "PaymentProviderDegraded")
                if "mtn_money" in json.dumps(b)]
    for provider in ("mtn_money", "visa"):
        g["nilecare_provider_success_ratio"].labels(provider, "5m").set(0.99)
    g["nilecare_provider_up"].labels("mtn_money").set(1)


def test_every_panel_query_returns_data_from_the_service_metrics(stack: Stack) -> None:
    """Each dashboard query, run on the live Prometheus scraping service.metrics targets."""
    root = Path(__file__).resolve().parents[2]
    exprs = []
    for path in sorted((root / "monitoring/dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                exprs.append((f"{path.name}: {panel['title']}", target["expr"]
                              .replace("$provider", ".*").replace("$__rate_interval", "1m")))
    assert len(exprs) > 20

    def empty() -> list[str]:
        return [f"{title}: {expr}" for title, expr in exprs if not stack.query(expr)]

    deadline = time.monotonic() + WAIT
    missing = empty()
    while missing and time.monotonic() < deadline:
        time.sleep(1)
        missing = empty()
    assert not missing, "panels with no data:\n" + "\n".join(missing)


def test_decimal_threshold_survives_the_round_trip(stack: Stack) -> None:
    rules = httpx.get(f"{stack.prometheus_url}/api/v1/rules", timeout=5).json()
    exprs = [r["query"] for g in rules["data"]["groups"] for r in g["rules"]]
    assert "nilecare:payment_failure_rate:ratio_rate5m > 0.1" in exprs
    assert Decimal("0.1") == next(a.threshold for a in stack.spec.alerts
                                  if a.signal == "payment_failure_rate")
