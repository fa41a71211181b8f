"""The commands that run one process of the service image each: the gateway, the simulator,
the workers and the exporter, and `nilecare dev`, which runs them all on SQLite."""

from __future__ import annotations

import ipaddress
import threading
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from service import deployment
from service.cli.app import app, err, load_settings, run_until_signal

if TYPE_CHECKING:
    from service.settings import Settings

PANEL = "Processes (one per container; `dev` runs them all)"


@app.command(rich_help_panel=PANEL)
def serve(
    host: Annotated[str | None, typer.Option(help="Default: GATEWAY_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="Default: GATEWAY_PORT")] = None,
) -> None:
    """Run the payment gateway (Litestar) on GATEWAY_HOST:GATEWAY_PORT.

    One process per gateway: its counters are the ones its /metrics serves. Scale out with
    more gateway containers (each its own scrape target), not with processes behind one port.
    """
    import uvicorn

    from service import logs, tls

    settings = load_settings()
    bind = host or settings.gateway_host
    cert, key = _gateway_tls(settings, bind)
    logs.configure(settings.log_level, settings.log_format)
    # log_config=None: uvicorn's lines go through our one handler, not its own formats.
    uvicorn.run("service.api.main:app_factory", factory=True, host=bind,
                port=port or settings.gateway_port, access_log=False, log_config=None,
                log_level=settings.log_level.lower(), timeout_graceful_shutdown=20,
                ssl_certfile=cert, ssl_keyfile=key,
                # uvicorn's default ("TLSv1") admits CBC and SHA-1 suites; TLS 1.3 ignores it.
                # Its context is TLS_SERVER, whose minimum is TLS 1.2 on Python 3.10 and later.
                ssl_ciphers=tls.CIPHERS)


def _gateway_tls(settings: Settings, bind: str) -> tuple[str | None, str | None]:
    """The certificate and key files the gateway serves with, checked before it starts; none
    only on a loopback address (plain HTTP never leaves the host)."""
    from service import tls

    cert, key = settings.gateway_tls_cert_file, settings.gateway_tls_key_file
    if (cert is None) != (key is None):
        err.print("[red]nilecare: set GATEWAY_TLS_CERT_FILE and GATEWAY_TLS_KEY_FILE together "
                  "(one is unset)[/red]")
        raise typer.Exit(2)
    if cert is None or key is None:
        if not _loopback(bind):
            err.print(f"[red]nilecare: the gateway would serve plain HTTP on {bind}, beyond "
                      "this host. Set GATEWAY_TLS_CERT_FILE and GATEWAY_TLS_KEY_FILE (`make "
                      "secrets` writes a development pair under secrets/), or bind "
                      "127.0.0.1.[/red]")
            raise typer.Exit(2)
        return None, None
    try:
        tls.check_pair(cert, key)
    except tls.TlsConfigError as exc:
        err.print(f"[red]nilecare: {exc}[/red]")
        raise typer.Exit(2) from None
    return str(cert), str(key)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command(rich_help_panel=PANEL)
def simulator(
    host: str = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Listen port")] = deployment.SIMULATOR_PORT,
) -> None:
    """Run the provider simulator (every electronic provider's API, controllable)."""
    import uvicorn

    from service import logs, tls

    settings = load_settings()
    try:  # the CA its webhooks check an HTTPS gateway against
        tls.client_context(settings.gateway_tls_ca_file)
    except tls.TlsConfigError as exc:
        err.print(f"[red]nilecare: GATEWAY_TLS_CA_FILE: {exc}[/red]")
        raise typer.Exit(2) from None
    logs.configure(settings.log_level, settings.log_format)
    uvicorn.run("service.api.main:simulator_factory", factory=True, host=host, port=port,
                access_log=False, log_config=None, log_level=settings.log_level.lower())


@app.command(rich_help_panel=PANEL)
def worker(
    heartbeat: Annotated[Path, typer.Option(help="Heartbeat file for `healthcheck --worker`")]
    = deployment.WORKER_HEARTBEAT,
    no_tasks: Annotated[bool, typer.Option(
        "--no-tasks", help="Only verify payments; skip the scheduled tasks")] = False,
) -> None:
    """Run the payment worker: verify open payments with the providers, expire pending
    ones, purge idempotency keys, send the daily summary. Its counters are served on
    METRICS_HOST:WORKER_METRICS_PORT/metrics."""
    from service.services.context import Context
    from service.workers import daily_summary, exposition
    from service.workers.tasks import Scheduler
    from service.workers.verification import PaymentWorker

    def body(stop: threading.Event) -> None:
        ctx = Context.build(load_settings())

        def summary_of(day: date) -> None:
            daily_summary.deliver(ctx.settings, ctx.sessions, day)

        try:
            with exposition.serving(ctx.metrics.registry, ctx.settings.metrics_host,
                                    ctx.settings.worker_metrics_port, "worker"):
                scheduler = None if no_tasks else Scheduler(ctx, daily_summary=summary_of)
                PaymentWorker(ctx, heartbeat_path=heartbeat, scheduler=scheduler).run(stop)
        finally:
            ctx.close()

    run_until_signal("worker", body)


@app.command(rich_help_panel=PANEL)
def exporter(
    host: Annotated[str | None, typer.Option(help="Default: EXPORTER_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="Default: EXPORTER_PORT")] = None,
) -> None:
    """Run the metrics exporter: business gauges from the database on EXPORTER_PORT, each
    scrape bounded by EXPORTER_TIMEOUT_SECONDS."""
    from service.db.engine import make_engine
    from service.workers import exposition
    from service.workers.exporter import Exporter

    def body(stop: threading.Event) -> None:
        settings = load_settings()
        timeout = settings.exporter_timeout_seconds
        engine = make_engine(settings, timeout=timeout)
        exporter = Exporter(engine, settings.zone, timeout=timeout)
        try:
            with exposition.serving(exporter.registry, host or settings.exporter_host,
                                    port or settings.exporter_port, "exporter"):
                stop.wait()
        finally:
            exporter.close()
            engine.dispose()

    run_until_signal("exporter", body)


@app.command("reconciliation-worker", rich_help_panel=PANEL)
def reconciliation_worker(
    heartbeat: Annotated[Path, typer.Option(help="Heartbeat file for `healthcheck --worker`")]
    = deployment.RECONCILIATION_HEARTBEAT,
) -> None:
    """Run the reconciliation worker: requests the day's run at RECONCILIATION_TIME
    (TIMEZONE) and executes requested runs one at a time. Its counters are served on
    METRICS_HOST:RECONCILIATION_METRICS_PORT/metrics."""
    from prometheus_client import CollectorRegistry

    from service.db.engine import make_engine, session_factory
    from service.metrics import EventMetrics
    from service.reconciliation.schedule import RECONCILIATION_TIMEOUT, run_worker
    from service.workers import exposition

    def body(stop: threading.Event) -> None:
        settings = load_settings()
        engine = make_engine(settings, timeout=RECONCILIATION_TIMEOUT)
        metrics = EventMetrics(CollectorRegistry())
        try:
            with exposition.serving(metrics.registry, settings.metrics_host,
                                    settings.reconciliation_metrics_port, "reconciliation_worker"):
                run_worker(settings, session_factory(engine), stop, heartbeat, metrics)
        finally:
            engine.dispose()

    run_until_signal("reconciliation_worker", body)


@app.command(rich_help_panel=PANEL)
def dev(
    data_dir: Annotated[Path, typer.Option(
        help="Where the SQLite file, dev secrets and heartbeats live")] = Path("var"),
    simulator_port: Annotated[int, typer.Option(
        min=1, max=65535, help="Port of the provider simulator")] = deployment.SIMULATOR_PORT,
) -> None:
    """Everything `make run` starts, on SQLite: migrations, the simulator, the gateway
    (GATEWAY_PORT), the payment worker, the reconciliation worker and the exporter
    (EXPORTER_PORT)."""
    from service.devenv import supervise

    raise typer.Exit(supervise(data_dir, simulator_port, err))
