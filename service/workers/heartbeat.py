"""A file a worker touches every loop; its container's healthcheck reads the age."""

from __future__ import annotations

import time
from pathlib import Path

DEFAULT_PATH = Path("/tmp/nilecare-worker.heartbeat")  # noqa: S108 - container-local


def beat(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"{time.time():.3f}\n", encoding="utf-8")
    tmp.replace(path)


def fresh(path: Path, max_age_seconds: float) -> bool:
    """True when the worker beat within `max_age_seconds`."""
    try:
        age = time.time() - path.stat().st_mtime
    except OSError:
        return False
    return age <= max_age_seconds
