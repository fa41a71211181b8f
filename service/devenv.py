"""The embedded development environment (`nilecare dev`, `make run`): local secrets, the
variables it sets, and the supervisor that runs every process on SQLite until Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from service import deployment
from service.domain.catalog import credential_groups

if TYPE_CHECKING:
    from collections.abc import Callable

    from service.settings import Settings

SIMULATOR_PORT = deployment.SIMULATOR_PORT


def ensure_secrets(directory: Path) -> Path:
    """Write random development secrets once (kept across runs so tokens stay valid)."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    wanted: dict[str, str] = {
        "jwt_secret": secrets.token_hex(32),
        "webhook_secret": secrets.token_hex(32),
        "encryption_key": secrets.token_hex(32),
    }
    for group in credential_groups():
        wanted.update({group.api_key: "dev-" + secrets.token_hex(8),
                       group.api_secret: secrets.token_hex(32)})
    for name, value in wanted.items():
        path = directory / name
        if not path.exists():
            path.write_text(value + "\n", encoding="utf-8")
            path.chmod(0o600)
    return directory


def environment(data_dir: Path, simulator_port: int = SIMULATOR_PORT) -> dict[str, str]:
    """What the embedded default runs with: SQLite, in-process cache, the simulator."""
    env = dict(os.environ)
    # Plain HTTP on 127.0.0.1: TLS files meant for a deployment do not apply here.
    for name in ("GATEWAY_TLS_CERT_FILE", "GATEWAY_TLS_KEY_FILE"):
        env.pop(name, None)
    env.setdefault("APP_ENV", "development")
    env.setdefault("LOG_FORMAT", "console")
    env.setdefault("DATA_DIR", str(data_dir))
    env.setdefault("SECRETS_DIR", str(ensure_secrets(data_dir / "dev-secrets")))
    env.setdefault("PROVIDER_SIMULATOR_URL", f"http://127.0.0.1:{simulator_port}")
    # Provider webhooks must reach this gateway, wherever GATEWAY_PORT put it.
    env.setdefault("GATEWAY_PUBLIC_URL",
                   deployment.local_url(int(env.get("GATEWAY_PORT") or deployment.GATEWAY_PORT)))
    env.setdefault("STATEMENT_DIR", str(data_dir / "statements"))
    for group in credential_groups():
        env.setdefault(group.merchant_id.upper(), f"NILECARE-{group.group.upper()}")
    return env


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
            return bool(response.status == 200)
    except OSError:
        return False


class _Stopped(Exception):
    """Every child has been stopped; the supervisor returns."""


def supervise(data_dir: Path, simulator_port: int, err: Console) -> int:
    """Migrate, start the simulator, the gateway, both workers and the exporter as child
    processes, print where they are and a token, and stop them all when one exits or on
    SIGTERM/SIGINT. Returns the exit code for `nilecare dev`."""
    from service import settings as config

    env = environment(data_dir, simulator_port)
    try:
        settings = config.load(env)
    except config.SettingsError as exc:
        err.print(f"[red]nilecare: {exc}[/red]")
        return 2
    ports = {"gateway": settings.gateway_port, "simulator": simulator_port,
             "exporter": settings.exporter_port, "worker metrics": settings.worker_metrics_port,
             "reconciliation metrics": settings.reconciliation_metrics_port}
    if len(set(ports.values())) < len(ports):
        err.print(f"[red]the ports must differ: {ports}[/red]")
        return 2
    for name, port in ports.items():
        if _answers(deployment.local_url(port, deployment.HEALTH_PATH)):
            err.print(f"[red]port {port} ({name}) is already serving; stop the other instance "
                      "first[/red]")
            return 1
    exe = [sys.executable, "-m", "service.cli"]
    if subprocess.run([*exe, "migrate"], env=env, check=False).returncode != 0:
        return 1
    beats = data_dir / "heartbeats"
    commands = {
        "simulator": ["simulator", "--port", str(simulator_port)],
        "gateway": ["serve"],
        "payment worker": ["worker", "--heartbeat", str(beats / "payment-worker.heartbeat")],
        "reconciliation worker": ["reconciliation-worker", "--heartbeat",
                                  str(beats / "reconciliation-worker.heartbeat")],
        "exporter": ["exporter"],
    }
    children = {name: subprocess.Popen([*exe, *args], env=env)
                for name, args in commands.items()}

    def stop(*_: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second signal must not cut this short
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for child in children.values():
            if child.poll() is None:
                child.terminate()
        for child in children.values():
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
        raise _Stopped

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    with contextlib.suppress(_Stopped):
        _watch(settings, children, simulator_port, beats, err, stop)
    return 0


def _watch(settings: Settings, children: dict[str, subprocess.Popen[bytes]],
           simulator_port: int, beats: Path, err: Console, stop: Callable[[], None]) -> None:
    """Wait until every process answers, print the banner, then wait for one to exit."""
    base = f"http://{settings.gateway_host}:{settings.gateway_port}"
    exporter_url = f"http://{settings.exporter_host}:{settings.exporter_port}"
    worker_urls = [f"http://{settings.metrics_host}:{port}" for port in
                   (settings.worker_metrics_port, settings.reconciliation_metrics_port)]
    health = deployment.HEALTH_PATH
    deadline = time.monotonic() + 60
    while not all(_answers(url) for url in (f"{base}{health}/ready", f"{exporter_url}{health}",
                                            *(f"{u}{health}" for u in worker_urls))):
        if time.monotonic() > deadline or any(c.poll() is not None for c in children.values()):
            err.print("[red]the gateway, a worker or the exporter did not start; see the log "
                      "above[/red]")
            stop()
        time.sleep(0.3)
    from service.api.auth import mint

    token_value = mint(settings.jwt_secret.get_secret_value(), "dev-user",
                       ["accountant"], "fac-dev-1", 8 * 3600)
    # Plain output, whole lines: a wrapped token cannot be pasted.
    print(
        f"\nNileCare Payments is running (embedded: SQLite + in-process cache)\n"
        f"  gateway    {base}   (OpenAPI: {base}/schema, metrics: {base}/metrics)\n"
        f"  simulator  {deployment.local_url(simulator_port)}/_control\n"
        f"  exporter   {exporter_url}/metrics\n"
        f"  workers    payment worker {worker_urls[0]}/metrics, reconciliation worker "
        f"{worker_urls[1]}/metrics (heartbeats in {beats})\n"
        f"  token      (accountant, facility fac-dev-1, 8 h):\n{token_value}\n\n"
        f"  try: curl -s -H 'Authorization: Bearer <token>' -H 'Content-Type: application/json' "
        f"-H \"Idempotency-Key: $(cat /proc/sys/kernel/random/uuid)\" "
        f"-d '{{\"provider\":\"zain_cash\",\"amount\":\"150.00\",\"currency\":\"SDG\","
        f"\"patient_id\":\"p-1\",\"payer_phone\":\"+249912345678\"}}' {base}/api/v1/payments\n"
        f"  Ctrl-C stops everything.\n",
        file=sys.stderr, flush=True,
    )
    while all(c.poll() is None for c in children.values()):
        time.sleep(0.5)
    gone = [name for name, c in children.items() if c.poll() is not None]
    err.print(f"[red]{', '.join(gone)} exited; stopping the rest[/red]")
    stop()
