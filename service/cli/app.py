"""The `nilecare` command: the Typer app, how its commands read settings, and how a
long-running process runs until a signal."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

import typer
from rich.console import Console

from service import settings as config

app = typer.Typer(help="NileCare payment service.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
err = Console(stderr=True)


def load_settings() -> config.Settings:
    try:
        return config.load()
    except config.SettingsError as exc:
        err.print(f"[red]nilecare: {exc}[/red]")
        raise typer.Exit(2) from None


def run_until_signal(name: str, body: Callable[[threading.Event], None]) -> None:
    """Run a worker body with JSON logs until SIGTERM/SIGINT sets its stop flag."""
    from service import logs
    from service.workers import stopper

    loaded = load_settings()
    logs.configure(loaded.log_level, loaded.log_format)
    stop = threading.Event()
    stopper.install(stop)
    import structlog

    log = structlog.get_logger()
    try:
        body(stop)
    except Exception:  # the process boundary: one structured line, then a non-zero exit
        log.exception(f"{name}.crashed")
        raise typer.Exit(1) from None


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()
