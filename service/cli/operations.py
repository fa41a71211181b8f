"""The one-shot commands an operator runs: migrate, token, healthcheck, reconcile now, and
send the daily summary."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from service import deployment, healthprobe
from service.cli.app import app, err, load_settings

PANEL = "Operations"


@app.command(rich_help_panel=PANEL)
def migrate() -> None:
    """Migrate the database to head and seed the provider catalogue."""
    from service import logs
    from service.db import migrate as migrations
    from service.db.engine import make_engine

    settings = load_settings()
    logs.configure(settings.log_level, settings.log_format)
    engine = make_engine(settings)
    try:
        migrations.prepare(engine)
    finally:
        engine.dispose()
    err.print(f"database at revision {migrations.head()}")


@app.command(rich_help_panel=PANEL)
def token(
    role: Annotated[list[str], typer.Option(help="Role claim; repeat for several")],
    facility: Annotated[str | None, typer.Option(help="facility_id claim")] = None,
    subject: Annotated[str, typer.Option(help="sub claim")] = "dev-user",
    hours: Annotated[int, typer.Option(min=1, max=24 * 30)] = 8,
) -> None:
    """Mint a development JWT signed with JWT_SECRET."""
    from service.api.auth import mint

    settings = load_settings()
    typer.echo(mint(settings.jwt_secret.get_secret_value(), subject, role, facility,
                    hours * 3600))


@app.command(rich_help_panel=PANEL)
def healthcheck(
    url: Annotated[str, typer.Argument()] = healthprobe.DEFAULT_URL,
    timeout: float = healthprobe.DEFAULT_TIMEOUT,
    cafile: Annotated[Path | None, typer.Option(
        help="CA certificate(s) an https URL's server is checked against")] = None,
    server_name: Annotated[str | None, typer.Option(
        help="The name the server's certificate must carry (default: URL host)")] = None,
    worker: Annotated[bool, typer.Option(
        "--worker", help="Check a worker's heartbeat file instead of a URL")] = False,
    heartbeat: Annotated[Path, typer.Option(help="Heartbeat file (with --worker)")] = (
        deployment.WORKER_HEARTBEAT),
    max_age: Annotated[float, typer.Option(help="Seconds (with --worker)")] = (
        healthprobe.DEFAULT_MAX_AGE),
) -> None:
    """Exit 0 when URL answers 2xx, or with --worker when the heartbeat is fresh
    (container healthchecks: no curl in the image). The `nilecare` script answers this
    command without loading the CLI (service/healthprobe.py); this one is for --help."""
    healthy = (healthprobe.fresh(heartbeat, max_age) if worker
               else healthprobe.answers(url, timeout, cafile, server_name))
    raise typer.Exit(0 if healthy else 1)


@app.command(rich_help_panel=PANEL)
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

    settings = load_settings()
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


@app.command(rich_help_panel=PANEL)
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

    settings = load_settings()
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
