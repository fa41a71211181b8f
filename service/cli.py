"""`nilecare`: one command per process of the service image."""

from __future__ import annotations

import os
import threading
import time
import urllib.request
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from service import deployment
from service import settings as config

app = typer.Typer(help="NileCare payment service.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
err = Console(stderr=True)


def _settings() -> config.Settings:
    try:
        return config.load()
    except config.SettingsError as exc:
        err.print(f"[red]nilecare: {exc}[/red]")
        raise typer.Exit(2) from None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Default: GATEWAY_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="Default: GATEWAY_PORT")] = None,
) -> None:
    """Run the payment gateway (Litestar) on GATEWAY_HOST:GATEWAY_PORT.

    One process per gateway: its counters are the ones its /metrics serves. Scale out with
    more gateway containers (each its own scrape target), not with processes behind one port.
    """
    import uvicorn

    from service import logs

    settings = _settings()
    logs.configure(settings.log_level, settings.log_format)
    # log_config=None: uvicorn's lines go through our one handler, not its own formats.
    uvicorn.run("service.api.main:app_factory", factory=True, host=host or settings.gateway_host,
                port=port or settings.gateway_port, access_log=False, log_config=None,
                log_level=settings.log_level.lower(), timeout_graceful_shutdown=20)


@app.command()
def simulator(
    host: str = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Listen port")] = deployment.SIMULATOR_PORT,
) -> None:
    """Run the provider simulator (every electronic provider's API, controllable)."""
    import uvicorn

    from service import logs

    settings = _settings()
    logs.configure(settings.log_level, settings.log_format)
    uvicorn.run("service.api.main:simulator_factory", factory=True, host=host, port=port,
                access_log=False, log_config=None, log_level=settings.log_level.lower())


@app.command()
def migrate() -> None:
    """Migrate the database to head and seed the provider catalogue."""
    from service import logs
    from service.db import migrate as migrations
    from service.db.engine import make_engine

    settings = _settings()
    logs.configure(settings.log_level, settings.log_format)
    engine = make_engine(settings)
    try:
        migrations.prepare(engine)
    finally:
        engine.dispose()
    err.print(f"database at revision {migrations.head()}")


@app.command()
def token(
    role: Annotated[list[str], typer.Option(help="Role claim; repeat for several")],
    facility: Annotated[str | None, typer.Option(help="facility_id claim")] = None,
    subject: Annotated[str, typer.Option(help="sub claim")] = "dev-user",
    hours: Annotated[int, typer.Option(min=1, max=24 * 30)] = 8,
) -> None:
    """Mint a development JWT signed with JWT_SECRET."""
    from service.api.auth import mint

    settings = _settings()
    typer.echo(mint(settings.jwt_secret.get_secret_value(), subject, role, facility,
                    hours * 3600))


@app.command()
def healthcheck(
    url: Annotated[str, typer.Argument()] = deployment.local_url(deployment.GATEWAY_PORT,
                                                                 deployment.HEALTH_PATH),
    timeout: float = 3.0,
    worker: Annotated[bool, typer.Option(
        "--worker", help="Check a worker's heartbeat file instead of a URL")] = False,
    heartbeat: Annotated[Path, typer.Option(help="Heartbeat file (with --worker)")] = (
        deployment.WORKER_HEARTBEAT),
    max_age: Annotated[float, typer.Option(help="Seconds (with --worker)")] = 120.0,
) -> None:
    """Exit 0 when URL answers 2xx, or with --worker when the heartbeat is fresh
    (container healthchecks: no curl in the image)."""
    if worker:
        from service.workers.heartbeat import fresh

        raise typer.Exit(0 if fresh(heartbeat, max_age) else 1)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            ok = 200 <= response.status < 300
    except OSError:
        ok = False
    raise typer.Exit(0 if ok else 1)


@app.command()
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


def _run_until_signal(name: str, body: Callable[[threading.Event], None]) -> None:
    """Run a worker body with JSON logs until SIGTERM/SIGINT sets its stop flag."""
    from service import logs
    from service.workers import stopper

    settings = _settings()
    logs.configure(settings.log_level, settings.log_format)
    stop = threading.Event()
    stopper.install(stop)
    import structlog

    log = structlog.get_logger()
    try:
        body(stop)
    except Exception:  # the process boundary: one structured line, then a non-zero exit
        log.exception(f"{name}.crashed")
        raise typer.Exit(1) from None


@app.command()
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
        ctx = Context.build(_settings())

        def summary_of(day: date) -> None:
            daily_summary.deliver(ctx.settings, ctx.sessions, day)

        try:
            with exposition.serving(ctx.metrics.registry, ctx.settings.metrics_host,
                                    ctx.settings.worker_metrics_port, "worker"):
                scheduler = None if no_tasks else Scheduler(ctx, daily_summary=summary_of)
                PaymentWorker(ctx, heartbeat_path=heartbeat, scheduler=scheduler).run(stop)
        finally:
            ctx.close()

    _run_until_signal("worker", body)


@app.command()
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
        settings = _settings()
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

    _run_until_signal("exporter", body)


@app.command()
def reconcile(
    wait: Annotated[float, typer.Option(
        help="Seconds to wait for a run another worker is executing")] = 3600.0,
) -> None:
    """Run reconciliation now (import new statements, match, record), with progress. The
    run is requested like the API's; if another worker executes it (or one is in progress),
    this waits for it and reports how it ended."""
    from rich.progress import Progress

    from service import logs
    from service.db.engine import make_engine, session_factory
    from service.reconciliation import runs, statements
    from service.reconciliation.schedule import (
        RECONCILIATION_TIMEOUT,
        execute_next,
        worker_id,
    )

    settings = _settings()
    logs.configure(settings.log_level, settings.log_format)
    engine = make_engine(settings, timeout=RECONCILIATION_TIMEOUT)
    try:
        sessions = session_factory(engine)
        run_id, _ = runs.request(sessions, "cli")
        owner = f"cli:{worker_id()}"
        deadline = time.monotonic() + wait
        with Progress(console=err) as progress:
            task = progress.add_task(f"{run_id}: matching statement lines", total=None)
            while True:
                execute_next(sessions, statements.inbox_for(settings), owner,
                             progress=lambda done, total: progress.update(
                                 task, completed=done, total=total))
                with sessions() as session:
                    found = runs.view(session, run_id)
                assert found is not None
                if found["status"] in ("completed", "failed"):
                    break
                if time.monotonic() > deadline:
                    err.print(f"[red]{run_id} is still {found['status']} after {wait:.0f} s; "
                              "the reconciliation worker will finish it[/red]")
                    raise typer.Exit(1)
                progress.update(task, description=f"{run_id}: {found['status']} "
                                "(another worker has the active run)")
                time.sleep(1)
    finally:
        engine.dispose()
    if found["status"] == "failed":
        err.print(f"[red]{run_id} failed: {found['error']}[/red]")
        raise typer.Exit(1)
    typer.echo(f"{run_id}: {found['lines']} lines, {found['matched']} matched, "
               f"issues {found['issues_found'] or 'none'}")


@app.command()
def summary(
    day: Annotated[str | None, typer.Option(
        "--date", help="Local day (YYYY-MM-DD in TIMEZONE); default: yesterday")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print the text part instead of sending it")] = False,
) -> None:
    """Send the daily summary email for one day now (or print it with --dry-run)."""
    from service import logs
    from service.db.engine import make_engine, session_factory
    from service.workers import daily_summary

    settings = _settings()
    logs.configure(settings.log_level, settings.log_format)
    try:
        wanted = date.fromisoformat(day) if day else daily_summary.yesterday(settings.zone)
    except ValueError:
        raise typer.BadParameter(f"{day!r} is not a date like 2025-01-31",
                                 param_hint="--date") from None
    engine = make_engine(settings)
    try:
        sessions = session_factory(engine)
        if dry_run:
            with sessions() as session:
                found = daily_summary.gather(session, wanted, settings.zone)
            text, _html = daily_summary.render(found)
            typer.echo(f"Subject: {daily_summary.subject(found)}\n\n{text}")
            return
        reason = daily_summary.deliver(settings, sessions, wanted)
    finally:
        engine.dispose()
    if reason is not None:
        err.print(f"[red]daily summary for {wanted} not sent: {reason}[/red]")
        raise typer.Exit(1)
    err.print(f"daily summary for {wanted} sent to {settings.summary_recipients}")


@app.command("reconciliation-worker")
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
        settings = _settings()
        engine = make_engine(settings, timeout=RECONCILIATION_TIMEOUT)
        metrics = EventMetrics(CollectorRegistry())
        try:
            with exposition.serving(metrics.registry, settings.metrics_host,
                                    settings.reconciliation_metrics_port, "reconciliation_worker"):
                run_worker(settings, session_factory(engine), stop, heartbeat, metrics)
        finally:
            engine.dispose()

    _run_until_signal("reconciliation_worker", body)


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()


if __name__ == "__main__":
    main()
