"""The six containers for real: dockerd, a debootstrap base, the images, and `docker-compose up`."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from infra import compose, topology
from tests.e2e.containers.compose_stack import (
    COMPOSE_FILE,
    SIX,
    Stack,
    build_images,
)


@pytest.fixture(scope="session")
def images() -> dict[str, str]:
    """Steps 1-3: dockerd, the debootstrap base (cached), the service and stand-in images."""
    return build_images()


@pytest.fixture(scope="session")
def stack(images: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Step 4: the committed compose file, fresh secrets, overridden images, all healthy."""
    workdir = tmp_path_factory.mktemp("compose")
    shutil.copy(COMPOSE_FILE, workdir / COMPOSE_FILE.name)
    compose.write_secret_files(topology.build(), workdir / "secrets")
    env = {**os.environ, **images}
    running = Stack(workdir, env)
    running.compose("down", "-v", "--remove-orphans", check=False)
    running.compose("up", "-d")
    try:
        running.wait_healthy((*SIX, "payment-provider-simulator"))
        yield running
    finally:
        if os.environ.get("NILECARE_E2E_KEEP") != "1":
            running.compose("down", "-v", "--remove-orphans", check=False)
