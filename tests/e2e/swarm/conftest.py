"""A one-node swarm on the local engine: `docker swarm init`, the images the container run
builds, the rendered stack deployed with `docker stack deploy`, and `docker swarm leave
--force` at the end."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra import compose, swarm, topology
from infra.topology.catalogue import EDGE_NODE, MONITORING_NODE, STORES_NODE
from tests.e2e.containers.compose_stack import build_images, sh
from tests.e2e.swarm.swarm_stack import ABSENT, STACK, Swarm, swarm_env


def _swarm_state() -> str:
    return sh("docker", "info", "--format", "{{.Swarm.LocalNodeState}}", quiet=True).stdout.strip()


@pytest.fixture(scope="session")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Swarm]:
    images = build_images()
    if _swarm_state() == "active":
        pytest.fail("this engine is already in a swarm; the test makes and leaves its own "
                    "(docker swarm leave --force first)", pytrace=False)
    workdir: Path = tmp_path_factory.mktemp("swarm")
    compose.write_secret_files(topology.build(), workdir / "secrets")
    # These machines' kernel has no ESP: the overlays run unencrypted (one node anyway).
    assert swarm.main(["--plain-overlay", "--output", str(workdir),
                       "--secrets", str(workdir / "secrets")]) == 0
    sh("docker", "swarm", "init", "--advertise-addr", "127.0.0.1")
    try:
        node = sh("docker", "node", "ls", "-q", quiet=True).stdout.split()[0]
        labels = [arg for label in (STORES_NODE, MONITORING_NODE, EDGE_NODE)
                  for arg in ("--label-add", f"{label}=true")]
        sh("docker", "node", "update", *labels, node)
        stack = Swarm(workdir, swarm_env(images))
        stack.deploy()
        for name in ABSENT:
            sh("docker", "service", "scale", "--detach", f"{STACK}_{name}=0")
        stack.wait_converged()
        yield stack
    finally:
        if os.environ.get("NILECARE_E2E_KEEP") != "1":
            sh("docker", "stack", "rm", STACK, check=False)
            sh("docker", "swarm", "leave", "--force", check=False)
            _remove_volumes()


def _remove_volumes() -> None:
    """The stack's volumes, once the containers that held them are gone."""
    label = f"label=com.docker.stack.namespace={STACK}"
    for _ in range(30):
        names = sh("docker", "volume", "ls", "-q", "--filter", label, quiet=True).stdout.split()
        if not names or sh("docker", "volume", "rm", *names, check=False).returncode == 0:
            return
        time.sleep(2)
