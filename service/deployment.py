"""The deployment catalogue: the ports, paths and URLs the processes and the deployment agree
on, stated once.

The settings' defaults, the CLI and the dev supervisor (service/) and the topology that
compose and Pulumi are built from, with the stack's exports (infra/), read these. A port
moved here moves everywhere; nothing else writes one out.
"""

from __future__ import annotations

from pathlib import Path

# What each process listens on, inside its container and in `nilecare dev` alike.
GATEWAY_PORT = 7001
SIMULATOR_PORT = 7002
EXPORTER_PORT = 9101
WORKER_METRICS_PORT = 9102
RECONCILIATION_METRICS_PORT = 9103
# The stores inside the deployment, and the host's loopback ports to them (compose and the
# dev stack publish them one off from a local server's, so both can run on one machine).
MYSQL_PORT = 3306
MYSQL_HOST_PORT = 3307
REDIS_PORT = 6379
REDIS_HOST_PORT = 6380

HEALTH_PATH = "/health"
METRICS_PATH = "/metrics"
SECRETS_DIR = Path("/run/secrets")
# Container-local files (a private tmpfs) the workers beat and their healthchecks read.
WORKER_HEARTBEAT = Path("/tmp/nilecare-worker.heartbeat")  # noqa: S108
RECONCILIATION_HEARTBEAT = Path("/tmp/nilecare-reconciliation.heartbeat")  # noqa: S108


def local_url(port: int, path: str = "") -> str:
    """A process on this host (or inside the caller's own container)."""
    return f"http://127.0.0.1:{port}{path}"
