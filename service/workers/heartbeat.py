"""A file a worker touches every loop; its container's healthcheck reads the age."""

from __future__ import annotations

from pathlib import Path

import structlog

from service import deployment, healthprobe

DEFAULT_PATH = deployment.WORKER_HEARTBEAT
log = structlog.get_logger("nilecare.heartbeat")


def beat(path: Path) -> None:
    """Touch `path`. Only its mtime is read, so a touch is atomic and two workers sharing a
    path cannot trip over each other; a failure is logged, and the stale file then tells
    the healthcheck, which is what should act on it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    except OSError as exc:
        log.warning("heartbeat.failed", path=str(path), error=str(exc))


def fresh(path: Path, max_age_seconds: float) -> bool:
    """True when the worker beat within `max_age_seconds`."""
    return healthprobe.fresh(path, max_age_seconds)
