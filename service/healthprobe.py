"""The `nilecare` console script's front door, and `nilecare healthcheck` without the CLI
framework.

Every container runs its healthcheck every 10 to 15 seconds. Through the full CLI one check
cost 0.3 to 0.4 s of CPU, nearly all of it importing typer, rich and the command modules, for
one HTTP request or one stat() call. Across the ten containers of a stack that was a quarter
of a core, and under load a throttled container could time out its own check. This module
imports only the standard library and service.deployment. Every other command goes on to
the full CLI.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.request
from pathlib import Path

from service import deployment

DEFAULT_URL = deployment.local_url(deployment.GATEWAY_PORT, deployment.HEALTH_PATH)
DEFAULT_TIMEOUT = 3.0
DEFAULT_MAX_AGE = 120.0


def fresh(path: Path, max_age_seconds: float) -> bool:
    """True when the heartbeat file at `path` was touched within `max_age_seconds`."""
    try:
        age = time.time() - path.stat().st_mtime
    except OSError:
        return False
    return age <= max_age_seconds


def answers(url: str, timeout: float) -> bool:
    """True when `url` answers 2xx within `timeout` seconds."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            status: int = response.status
    except OSError:
        return False
    return 200 <= status < 300


def parser() -> argparse.ArgumentParser:
    """`nilecare healthcheck [URL] [--timeout S] [--worker] [--heartbeat PATH] [--max-age S]`."""
    found = argparse.ArgumentParser(
        prog="nilecare healthcheck",
        description="Exit 0 when URL answers 2xx, or with --worker when the heartbeat is "
                    "fresh (container healthchecks: no curl in the image).")
    found.add_argument("url", nargs="?", default=DEFAULT_URL)
    found.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    found.add_argument("--worker", action="store_true",
                       help="Check a worker's heartbeat file instead of a URL")
    found.add_argument("--heartbeat", type=Path, default=deployment.WORKER_HEARTBEAT,
                       help="Heartbeat file (with --worker)")
    found.add_argument("--max-age", type=float, default=DEFAULT_MAX_AGE,
                       help="Seconds (with --worker)")
    return found


def check(argv: list[str]) -> int:
    """0 when healthy, 1 when not (argparse exits 2 on a usage error)."""
    args = parser().parse_args(argv)
    healthy = fresh(args.heartbeat, args.max_age) if args.worker else answers(args.url,
                                                                              args.timeout)
    return 0 if healthy else 1


def main() -> None:
    """The `nilecare` console script."""
    if sys.argv[1:2] == ["healthcheck"]:
        raise SystemExit(check(sys.argv[2:]))
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    from service.cli import main as cli

    cli()
