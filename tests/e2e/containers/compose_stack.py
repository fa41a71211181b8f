"""Helpers for the container end-to-end run: shell calls, builds, the compose stack."""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra import topology
from service import tls

REPO = Path(__file__).resolve().parents[3]
COMPOSE_FILE = REPO / "docker-compose.payment.yml"
PROJECT = "nilecare-e2e"
BASE_IMAGE = os.environ.get("BASE_IMAGE", "nilecare/debian:bookworm")
IMAGES = {
    "NILECARE_IMAGE": "nilecare-payments:e2e",
    "MYSQL_IMAGE": "nilecare/mysql-standin:10.11",
    "REDIS_IMAGE": "nilecare/redis-standin:7",
    "PROMETHEUS_IMAGE": "nilecare/prometheus-standin:2.42",
    "ALERTMANAGER_IMAGE": "nilecare/alertmanager-standin:0.25",
    "EDGE_IMAGE": "nilecare/haproxy-standin:2.6",
}
SIX = topology.CORE_SERVICES
HEALTHY_WITHIN_S = 300


def network_name(name: str) -> str:
    """The Docker name compose gives the topology's network `name` in the test project."""
    return f"{PROJECT}_{name}"


def sh(*args: str, cwd: Path = REPO, env: dict[str, str] | None = None,
       check: bool = True, timeout: float = 900, quiet: bool = False,
       ) -> subprocess.CompletedProcess[str]:
    started = time.monotonic()
    result = subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True,
                            check=False, timeout=timeout)
    if not quiet:
        print(f"[{time.monotonic() - started:6.1f}s] {' '.join(args)[:120]} -> {result.returncode}")
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed:\n{result.stdout[-3000:]}\n"
                             f"{result.stderr[-3000:]}")
    return result


def docker_build(tag: str, context: Path, *, dockerfile: Path | None = None) -> None:
    args = ["docker", "build", "-q", "-t", tag, "--build-arg", f"BASE_IMAGE={BASE_IMAGE}"]
    if dockerfile is not None:
        args += ["-f", str(dockerfile)]
    # The classic builder: no buildx plugin is needed, and docker-compose 1.29 uses it too.
    sh(*args, str(context), env={**os.environ, "DOCKER_BUILDKIT": "0"})


@dataclass
class Stack:
    workdir: Path
    env: dict[str, str]

    def compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return sh("docker-compose", "-f", COMPOSE_FILE.name, "-p", PROJECT,
                  "--profile", "simulator", *args, cwd=self.workdir, env=self.env, check=check)

    def secret(self, name: str) -> str:
        return (self.workdir / "secrets" / name).read_text(encoding="utf-8").strip()

    @property
    def trust(self) -> ssl.SSLContext:
        """What a client of the gateway's HTTPS port trusts: the stack's CA secret."""
        return tls.client_context(self.workdir / "secrets" / tls.CA_SECRET)

    def inspect(self, container: str) -> dict[str, object]:
        out = sh("docker", "inspect", container, quiet=True).stdout
        data: list[dict[str, object]] = json.loads(out)
        return data[0]

    def networks(self, container: str) -> dict[str, dict[str, str]]:
        """The container's attachments by the compose network name (backend, host-access …):
        its address and the network's gateway, the host's own address on that bridge."""
        settings = self.inspect(container)["NetworkSettings"]
        assert isinstance(settings, dict)
        prefix = f"{PROJECT}_"
        return {
            name.removeprefix(prefix): {"ip": str(net["IPAddress"]), "gateway": str(net["Gateway"])}
            for name, net in settings["Networks"].items()
        }

    def health(self, container: str) -> str:
        state = self.inspect(container)["State"]
        assert isinstance(state, dict)
        health = state.get("Health") or {}
        return str(health.get("Status", state.get("Status")))

    def wait_healthy(self, names: tuple[str, ...], within_s: float = HEALTHY_WITHIN_S) -> None:
        deadline = time.monotonic() + within_s
        status: dict[str, str] = {}
        while time.monotonic() < deadline:
            status = {name: self.health(name) for name in names}
            if all(s == "healthy" for s in status.values()):
                return
            time.sleep(3)
        logs = {n: sh("docker", "logs", "--tail", "15", n, check=False).stderr[-1500:]
                for n, s in status.items() if s != "healthy"}
        raise AssertionError(f"not healthy after {within_s}s: {status}\n{logs}")


def build_images() -> dict[str, str]:
    """dockerd, the debootstrap base (cached), the service and stand-in images."""
    require_tools()
    sh("sh", "docker/start-dockerd.sh")
    sh("sh", "docker/build-base-image.sh", env={**os.environ, "BASE_IMAGE": BASE_IMAGE})
    sh("sh", "docker/prepare-build-extras.sh")
    docker_build(IMAGES["NILECARE_IMAGE"], REPO)
    for variable, directory in (("MYSQL_IMAGE", "mysql"), ("REDIS_IMAGE", "redis"),
                                ("PROMETHEUS_IMAGE", "prometheus"),
                                ("ALERTMANAGER_IMAGE", "alertmanager"),
                                ("EDGE_IMAGE", "haproxy")):
        docker_build(IMAGES[variable], REPO / "docker" / directory)
    return IMAGES


def require_tools() -> None:
    for tool in ("dockerd", "docker", "docker-compose", "debootstrap"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: apt-get install -y docker.io docker-compose "
                        "debootstrap", pytrace=False)
