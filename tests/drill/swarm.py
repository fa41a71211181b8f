"""The product as it runs on a swarm, for the fire drills (`python -m tests.drill --swarm`):
the committed stack deployed on a one-node swarm as `make e2e-swarm` deploys it, each drill's
fault turned into what a swarm operator meets, and each render's Prometheus a container on
the stack's frontend overlay that finds the tasks the way the stack's own Prometheus does
(the rendered `prometheus.swarm.yml`: dockerswarm_sd against the manager's Docker API).

The faults on a swarm:
- stop: the service scaled to nothing (the swarm would restart a stopped container), and
  back to its replica count; its tasks leave discovery.
- freeze: the task's container paused (SIGSTOP to the whole container, as on the host). The
  swarm's healthcheck may replace it; then thawing finds nothing to unpause.
- undiscover: the service's `com.nilecare.service` label, which discovery keeps targets by,
  removed and put back (a label is not the task template: no task restarts).
- provider modes: the simulator's control, from inside its own container.
"""

from __future__ import annotations

import json
import shlex
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.monitoring.prometheus_config import SWARM_REFRESH
from service import deployment, tls
from service.api.auth import mint
from tests.drill.system import JOBS
from tests.e2e.containers.compose_stack import sh
from tests.e2e.swarm.swarm_stack import EDGE_URL, STACK, Swarm, deployed, swarm_state
from tests.servers import answers

# Process name in the drill spec → its service in the stack.
SERVICES = {"gateway": "payment-gateway-service", "worker": "payment-worker",
            "reconciliation-worker": "payment-reconciliation-worker",
            "exporter": "payment-metrics-exporter", "database": "mysql-payment",
            "redis": "redis-payment", "simulator": "payment-provider-simulator"}
SERVICE_LABEL = "com.nilecare.service"
FRONTEND = f"{STACK}_frontend"
FACILITY = "fac-drill"
PROMETHEUS_READY_S = 120


def service_of(job: str) -> str:
    """The stack service that serves scrape job `job`."""
    process = next(p for p, j in JOBS.items() if j == job)
    return SERVICES[process]


def _gateway_bridge() -> str:
    """The host's address on docker_gwbridge, which containers on the overlays reach."""
    out = sh("docker", "network", "inspect", "docker_gwbridge", "--format",
             "{{range .IPAM.Config}}{{.Gateway}}{{end}}", quiet=True).stdout.strip()
    if not out:
        raise RuntimeError("docker_gwbridge has no gateway address")
    return out


@dataclass
class SwarmSystem:
    """A deployed stack, as the drill faults and reaches it."""

    swarm: Swarm
    alertmanager_host: str
    stop_vanishes: bool = True
    # dockerswarm_sd asks the Docker API every SWARM_REFRESH; the scrape manager takes the
    # change at its next 5 s reload tick.
    discovery_delay: int = int(SWARM_REFRESH.removesuffix("s")) + 5
    replicas: dict[str, int] = field(default_factory=dict)  # service → count before a stop
    paused: dict[str, list[str]] = field(default_factory=dict)  # process → containers

    @property
    def gateway(self) -> str:
        return EDGE_URL

    @property
    def trust(self) -> ssl.SSLContext:
        return self.swarm.trust

    @property
    def ca(self) -> bytes:
        return (self.swarm.workdir / "secrets" / tls.CA_SECRET).read_bytes()

    def token(self, subject: str, roles: tuple[str, ...] = ("accountant",)) -> str:
        secret = (self.swarm.workdir / "secrets" / "jwt_secret").read_text().strip()
        return mint(secret, subject, list(roles), FACILITY, 12 * 3600)

    def _one(self, process: str) -> str:
        """A running container of the process's service (waiting while it is replaced)."""
        deadline = time.monotonic() + 120
        while not (found := self.swarm.containers(SERVICES[process])):
            if time.monotonic() > deadline:
                raise RuntimeError(f"no running container of {SERVICES[process]}")
            time.sleep(2)
        return found[0]

    # --- the simulator --------------------------------------------------------------------
    def _simulator(self, method: str, path: str, body: dict[str, Any] | None = None) -> str:
        url = f"http://127.0.0.1:{deployment.SIMULATOR_PORT}{path}"
        data = "None" if body is None else repr(json.dumps(body).encode())
        script = ("import urllib.request;print(urllib.request.urlopen(urllib.request.Request("
                  f"{url!r},data={data},method={method!r},"
                  "headers={'Content-Type':'application/json'}),timeout=10).read().decode())")
        return sh("docker", "exec", self._one("simulator"), "python3", "-c", script,
                  quiet=True).stdout

    def controls(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = json.loads(self._simulator("GET", "/_control"))
        return found

    def control(self, provider: str, values: dict[str, Any]) -> None:
        self._simulator("PUT", f"/_control/{provider}", values)

    # --- statements -------------------------------------------------------------------------
    def reconcile(self, files: dict[str, str]) -> None:
        """`files` written into the reconciliation worker's statement directory (its volume),
        then `nilecare reconcile` run in that container at once."""
        container = self._one("reconciliation-worker")
        for name, content in files.items():
            # As the container's own user, so the worker can move the file once judged.
            path = f'"$STATEMENT_DIR"/{shlex.quote(name)}'
            written = subprocess.run(
                ["docker", "exec", "-i", container, "sh", "-c",
                 f'mkdir -p "$(dirname {path})" && cat > {path}'],
                input=content, capture_output=True, text=True, check=False, timeout=60)
            if written.returncode != 0:
                raise RuntimeError(f"writing {name} failed: {written.stderr[-2000:]}")
        done = sh("docker", "exec", container, "nilecare", "reconcile", check=False, quiet=True)
        if done.returncode != 0:
            raise RuntimeError(f"nilecare reconcile failed:\n{done.stderr[-2000:]}")

    # --- faults -----------------------------------------------------------------------------
    def stop(self, name: str) -> None:
        service = SERVICES[name]
        self.replicas[service] = self.swarm.replicas()[service][1]
        sh("docker", "service", "scale", "--detach", f"{self.swarm.service(service)}=0",
           quiet=True)

    def start(self, name: str) -> None:
        service = SERVICES[name]
        sh("docker", "service", "scale", "--detach",
           f"{self.swarm.service(service)}={self.replicas.pop(service)}", quiet=True)

    def freeze(self, name: str) -> None:
        containers = self.swarm.containers(SERVICES[name])
        sh("docker", "pause", *containers, quiet=True)
        self.paused[name] = containers

    def thaw(self, name: str) -> None:
        # A container the swarm replaced meanwhile is gone: nothing to unpause.
        for container in self.paused.pop(name, []):
            if sh("docker", "unpause", container, check=False, quiet=True).returncode != 0:
                print(f"          thaw: {SERVICES[name]}'s container {container[:12]} is gone "
                      "(the swarm replaced it)", flush=True)

    def undiscover(self, job: str) -> None:
        service = service_of(job)
        sh("docker", "service", "update", "--detach", "--label-rm", SERVICE_LABEL,
           self.swarm.service(service), quiet=True)

    def rediscover(self, job: str) -> None:
        service = service_of(job)
        sh("docker", "service", "update", "--detach", "--label-add",
           f"{SERVICE_LABEL}={service}", self.swarm.service(service), quiet=True)

    # --- monitoring -------------------------------------------------------------------------
    def add_targets(self, directory: Path, alertmanager: str) -> None:
        """Only the drill's Alertmanager is a file target; the jobs come from the swarm."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "alertmanager.yml").write_text(json.dumps([{"targets": [alertmanager]}]))

    @contextmanager
    def prometheus(self, workdir: Path) -> Iterator[str]:
        """The render's swarm Prometheus config in a container on the frontend overlay, with
        the Docker API and the render's directory mounted where the config names them;
        published on a loopback port for the drill's queries."""
        image = self.swarm.env["PROMETHEUS_IMAGE"]
        name = f"nilecare-drill-prometheus-{workdir.name}"
        sh("docker", "rm", "-f", name, check=False, quiet=True)
        sh("docker", "run", "-d", "--name", name, "--network", FRONTEND, "--user", "0:0",
           "-p", "127.0.0.1::9090",
           "-v", "/var/run/docker.sock:/var/run/docker.sock",
           "-v", f"{workdir}:{workdir}", image,
           f"--config.file={workdir / 'monitoring/prometheus.swarm.yml'}",
           f"--storage.tsdb.path={workdir / 'prom-data'}", "--web.listen-address=:9090",
           quiet=True)
        try:
            port = sh("docker", "port", name, "9090/tcp", quiet=True).stdout.split(":")[-1]
            url = f"http://127.0.0.1:{port.strip()}"
            if not answers(f"{url}/-/ready", PROMETHEUS_READY_S, pause=1):
                logs = sh("docker", "logs", "--tail", "40", name, check=False, quiet=True).stderr
                raise RuntimeError(f"the drill's Prometheus {name} is not ready:\n{logs}")
            yield url
        finally:
            (workdir / "prometheus.log").write_text(
                sh("docker", "logs", name, check=False, quiet=True).stderr)
            sh("docker", "rm", "-f", name, check=False, quiet=True)


@contextmanager
def running(workdir: Path) -> Iterator[SwarmSystem]:
    """A one-node swarm with the stack deployed and converged; left at the end."""
    if swarm_state() == "active":
        raise SystemExit("this engine is already in a swarm; the drill makes and leaves its "
                         "own (docker swarm leave --force first)")
    with deployed(workdir) as swarm:
        # The drill's own stacks replace the stack's monitoring: one Alertmanager per render.
        for name in ("prometheus", "alertmanager"):
            sh("docker", "service", "scale", "--detach", f"{swarm.service(name)}=0", quiet=True)
        yield SwarmSystem(swarm, _gateway_bridge())
