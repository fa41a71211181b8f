"""A real Prometheus and Alertmanager running the generated files for one render of the spec:
the committed spec with a drill overlay (local sinks, the drill's targets), possibly
time-scaled and cut down to the alerts drilled at that scale."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from infra.monitoring.render import SPEC_PATH, render, write
from infra.monitoring.spec import Spec, load
from infra.monitoring.variants import only, scaled
from service import tls
from tests.drill.system import Product, tool
from tests.servers import free_port, serving
from tests.sinks import HttpSink, MailSink

ROOT = Path(__file__).resolve().parents[2]
PD_KEY = "drill-routing-key-0123456789abcdef"
SMTP_PASSWORD = "drill-smtp-secret"
@dataclass
class Stack:
    name: str  # "x1" for the full-length render, "x20" for one scaled by 20
    scale: int
    spec: Spec  # the render it runs: overlaid, scaled, cut down
    url: str  # Prometheus
    channel: str  # sink path prefix and mail recipient of this stack

    def query(self, expr: str) -> list[dict[str, Any]]:
        reply = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        reply.raise_for_status()
        found: list[dict[str, Any]] = reply.json()["data"]["result"]
        return found


def overlay(workdir: Path, channel: str, sink: HttpSink, mail: MailSink) -> Path:
    """The drill's endpoints as an overlay file (the way an operator points a render at
    other receivers, targets and secrets without editing a generated file)."""
    path = workdir / "drill-overlay.yaml"
    path.write_text(yaml.safe_dump({
        "prometheus": {"targets_dir": str(workdir / "targets"),
                       "rules_dir": str(workdir / "monitoring/rules"),
                       "secrets_dir": str(workdir / "secrets")},
        # Digests go out at any hour on a drill.
        "daily_summary": {"start": "00:00", "end": "24:00", "location": "UTC"},
        "alertmanager": {
            "secrets_dir": str(workdir / "secrets"),
            "pagerduty_url": sink.url(f"/{channel}/pagerduty"),
            "heartbeat_url": sink.url(f"/{channel}/heartbeat"),
            "smtp": {"smarthost": f"127.0.0.1:{mail.port}", "require_tls": False,
                     "to": f"{channel}@drill.invalid"},
        },
    }))
    return path


@contextmanager
def running(workdir: Path, scale: int, alerts: set[str], system: Product, sink: HttpSink,
            mail: MailSink) -> Iterator[Stack]:
    """Prometheus and Alertmanager for the spec at `scale`, alerting only on `alerts` (all of
    them at scale 1)."""
    name = f"x{scale}"
    workdir.mkdir(parents=True)
    spec = load(ROOT / SPEC_PATH, overlays=[overlay(workdir, name, sink, mail)])
    variant = scaled(only(spec, alerts), scale) if scale > 1 else spec
    write(render(variant, check_timing=scale == 1), workdir)
    secrets = workdir / "secrets"
    secrets.mkdir()
    (secrets / "pagerduty_routing_key").write_text(PD_KEY + "\n")
    (secrets / "slack_webhook_url").write_text(sink.url(f"/{name}/slack") + "\n")
    (secrets / "smtp_password").write_text(SMTP_PASSWORD)
    # The gateway serves HTTPS; Prometheus checks it against its CA, as when deployed.
    (secrets / tls.CA_SECRET).write_bytes(system.ca)
    am = f"{system.alertmanager_host}:{free_port()}"
    system.add_targets(workdir / "targets", am)
    with ExitStack() as stack:
        stack.enter_context(serving("alertmanager", [
            tool("prometheus-alertmanager"),
            f"--config.file={workdir / 'alertmanager/alertmanager.yml'}",
            f"--storage.path={workdir / 'am-data'}", f"--web.listen-address={am}",
            "--cluster.listen-address=",
        ], workdir / "alertmanager.log", f"http://{am}/-/ready"))
        prometheus = stack.enter_context(system.prometheus(workdir))
        yield Stack(name, scale, variant, prometheus, name)
