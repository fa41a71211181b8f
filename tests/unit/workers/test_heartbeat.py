"""Heartbeats: shared paths and unwritable places never stop a worker."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from service.workers import heartbeat


def test_workers_sharing_a_heartbeat_path_never_fail(tmp_path: Path) -> None:
    path = tmp_path / "beat"
    errors: list[BaseException] = []

    def loop() -> None:
        try:
            for _ in range(2000):
                heartbeat.beat(path)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=loop) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and heartbeat.fresh(path, 5)


def test_a_stale_or_missing_heartbeat_is_not_fresh(tmp_path: Path) -> None:
    path = tmp_path / "beat"
    assert not heartbeat.fresh(path, 60)
    heartbeat.beat(path)
    old = time.time() - 120
    os.utime(path, (old, old))
    assert not heartbeat.fresh(path, 60)
    heartbeat.beat(path)
    assert heartbeat.fresh(path, 60)


def test_an_unwritable_heartbeat_is_logged_not_raised(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    heartbeat.beat(blocker / "beat")  # its parent is a file: OSError, swallowed
    assert not heartbeat.fresh(blocker / "beat", 60)
