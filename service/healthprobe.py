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
import http.client
import os
import socket
import ssl
import sys
import time
import urllib.parse
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


def answers(url: str, timeout: float, cafile: Path | None = None,
            server_name: str | None = None) -> bool:
    """True when `url` answers 2xx within `timeout` seconds. An https URL is checked against
    `cafile` (else the system's roots) under `server_name` (else the URL's host): a process
    checks its own port on 127.0.0.1, and its certificate names the service."""
    try:
        if url.startswith("https://"):
            status = _https_status(url, timeout, cafile, server_name)
        else:
            with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
                status = response.status
    except (OSError, http.client.HTTPException):
        return False
    return 200 <= status < 300


def _https_status(url: str, timeout: float, cafile: Path | None, server_name: str | None) -> int:
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    raw = socket.create_connection((host, parts.port or 443), timeout=timeout)
    with context.wrap_socket(raw, server_hostname=server_name or host) as secure:
        connection = http.client.HTTPConnection(host, parts.port or 443, timeout=timeout)
        connection.sock = secure  # already connected and verified: request goes over it
        connection.request("GET", parts.path or "/", headers={"Connection": "close"})
        status: int = connection.getresponse().status
        connection.close()
    return status


def parser() -> argparse.ArgumentParser:
    """`nilecare healthcheck [URL] [--timeout S] [--cafile PEM] [--server-name NAME] [--worker]
    [--heartbeat PATH] [--max-age S]`."""
    found = argparse.ArgumentParser(
        prog="nilecare healthcheck",
        description="Exit 0 when URL answers 2xx, or with --worker when the heartbeat is "
                    "fresh (container healthchecks: no curl in the image).")
    found.add_argument("url", nargs="?", default=DEFAULT_URL)
    found.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    found.add_argument("--cafile", type=Path, default=None,
                       help="CA certificate(s) an https URL's server is checked against")
    found.add_argument("--server-name", default=None,
                       help="The name the server's certificate must carry (default: URL host)")
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
    healthy = (fresh(args.heartbeat, args.max_age) if args.worker
               else answers(args.url, args.timeout, args.cafile, args.server_name))
    return 0 if healthy else 1


def main() -> None:
    """The `nilecare` console script."""
    if sys.argv[1:2] == ["healthcheck"]:
        raise SystemExit(check(sys.argv[2:]))
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    from service.cli import main as cli

    cli()
