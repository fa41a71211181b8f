"""Inhibition as the generated Alertmanager config does it: a real Alertmanager, alerts posted
to its API the way Prometheus posts them, and local sinks that show what reached on-call.
(`make drill` provokes the alerts themselves on the running system; this isolates the rules.)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.monitoring.render import SPEC_PATH, render, write
from infra.monitoring.spec import load
from infra.monitoring.variants import scaled
from tests.drill.stacks import PD_KEY, SMTP_PASSWORD, overlay
from tests.drill.system import tool
from tests.servers import free_port, serving
from tests.sinks import HttpSink, MailSink

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, HttpSink]]:
    tmp = tmp_path_factory.mktemp("inhibition")
    with HttpSink().serving() as sink, MailSink(SMTP_PASSWORD).serving() as mail:
        # The committed spec with local sinks; waits divided by 30 so a case takes seconds.
        spec = scaled(load(ROOT / SPEC_PATH, overlays=[overlay(tmp, "am", sink, mail)]), 30)
        write(render(spec, check_timing=False), tmp)
        (tmp / "secrets").mkdir()
        (tmp / "secrets/pagerduty_routing_key").write_text(PD_KEY)
        (tmp / "secrets/slack_webhook_url").write_text(sink.url("/am/slack"))
        (tmp / "secrets/smtp_password").write_text(SMTP_PASSWORD)
        address = f"127.0.0.1:{free_port()}"
        with serving("alertmanager", [
                tool("prometheus-alertmanager"),
                f"--config.file={tmp / 'alertmanager/alertmanager.yml'}",
                f"--storage.path={tmp / 'data'}", f"--web.listen-address={address}",
                "--cluster.listen-address="], tmp / "alertmanager.log",
                f"http://{address}/-/ready"):
            yield f"http://{address}", sink


def _post(url: str, *alerts: dict[str, str], firing: bool = True) -> None:
    now = datetime.now(UTC)
    ends = now + timedelta(minutes=5) if firing else now
    body: list[dict[str, Any]] = [{
        "labels": labels, "annotations": {"summary": "s", "description": "d",
                                          "runbook_url": "https://example.invalid/#x"},
        "startsAt": (now - timedelta(seconds=1)).isoformat(), "endsAt": ends.isoformat()}
        for labels in alerts]
    httpx.post(f"{url}/api/v2/alerts", json=body, timeout=10).raise_for_status()


def _reached(sink: HttpSink, receiver: str) -> set[tuple[str, str | None]]:
    return {(n.alertname, n.provider) for n in sink.notices
            if n.receiver == receiver and n.status == "firing"}


def _case(url: str, sink: HttpSink, *alerts: dict[str, str]) -> tuple[set[Any], set[Any]]:
    """What reached PagerDuty and Slack while `alerts` fired; they are resolved afterwards,
    so one case's alerts inhibit nothing of the next."""
    sink.notices.clear()
    _post(url, *alerts)
    time.sleep(6)  # several group waits and intervals of the scaled routes
    reached = _reached(sink, "pagerduty"), _reached(sink, "slack")
    _post(url, *alerts, firing=False)
    time.sleep(1)
    return reached


def _alert(name: str, severity: str, **labels: str) -> dict[str, str]:
    return {"alertname": name, "severity": severity, "service": "payment-gateway-service",
            **labels}


def test_a_providers_critical_hides_only_its_own_lesser_alerts(
        alertmanager: tuple[str, HttpSink]) -> None:
    url, sink = alertmanager
    paged, slack = _case(url, sink,
                         _alert("PaymentProviderDown", "critical", provider="mtn_money"),
                         _alert("PaymentProviderDegraded", "high", provider="mtn_money"),
                         _alert("PaymentProviderDegraded", "high", provider="zain_cash"),
                         _alert("PendingVerificationsHigh", "high"))
    assert paged == {("PaymentProviderDown", "mtn_money")}
    assert slack == {("PaymentProviderDegraded", "zain_cash"), ("PendingVerificationsHigh", None)}


def test_a_critical_without_a_provider_hides_no_provider_alert(
        alertmanager: tuple[str, HttpSink]) -> None:
    url, sink = alertmanager
    # Any service-wide critical (the spec's has none today): it once silenced every
    # provider alert of its service.
    _paged, slack = _case(url, sink,
                          _alert("PaymentSLOFastBurn", "critical", window="1h"),
                          _alert("PaymentProviderDegraded", "high", provider="bankak"))
    assert ("PaymentProviderDegraded", "bankak") in slack


def test_the_gateway_and_the_database_hide_what_they_make_meaningless(
        alertmanager: tuple[str, HttpSink]) -> None:
    url, sink = alertmanager
    paged, slack = _case(url, sink,
                         _alert("PaymentGatewayDown", "critical", job="payment-gateway"),
                         _alert("PaymentProviderDegraded", "high", provider="visa"),
                         _alert("PaymentWorkerDown", "high", job="payment-worker"))
    assert ("PaymentGatewayDown", None) in paged
    assert slack == {("PaymentWorkerDown", None)}
    paged, slack = _case(url, sink,
                         _alert("PaymentDatabaseDown", "critical"),
                         _alert("PendingVerificationsHigh", "high"),
                         _alert("PaymentProcessingSlow", "high", provider="bankak"))
    assert ("PaymentDatabaseDown", None) in paged
    # Read from the database: silenced. Counted by the gateway and workers: still sent.
    assert slack == {("PaymentProcessingSlow", "bankak")}

