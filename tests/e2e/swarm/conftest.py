"""A one-node swarm on the local engine: `docker swarm init`, the images the container run
builds, the rendered stack deployed with `docker stack deploy`, and `docker swarm leave
--force` at the end."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.e2e.swarm.swarm_stack import Swarm, deployed, swarm_state


@pytest.fixture(scope="session")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Swarm]:
    if swarm_state() == "active":
        pytest.fail("this engine is already in a swarm; the test makes and leaves its own "
                    "(docker swarm leave --force first)", pytrace=False)
    with deployed(tmp_path_factory.mktemp("swarm"),
                  keep=os.environ.get("NILECARE_E2E_KEEP") == "1") as stack:
        yield stack
