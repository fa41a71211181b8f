"""Run the provider simulator in a background thread for tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from service.settings import Settings
from service.simulator.app import create_simulator
from tests.servers import answers, free_port


@contextmanager
def running_simulator(settings: Settings) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_simulator(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    if not answers(f"{url}/health", 10, pause=0.05):
        raise RuntimeError("simulator did not start")
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
