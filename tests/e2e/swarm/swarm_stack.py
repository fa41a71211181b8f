"""A real one-node swarm for the swarm end-to-end run: the stack deployed from the rendered
files, and what the tests read from it (services, tasks, containers, the database, metrics)."""

from __future__ import annotations

import json
import os
import re
import ssl
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from infra import compose, swarm, topology
from infra.topology.catalogue import EDGE_NODE, MONITORING_NODE, STORES_NODE
from service import deployment, tls
from tests.e2e.containers.compose_stack import build_images, sh

STACK = "nilecare"
EDGE_URL = "https://127.0.0.1:7001"  # the edge serves HTTPS only
# No Grafana image exists on these machines (no registry, no Debian package): it is scaled
# to nothing after the deploy; everything else must converge.
ABSENT = ("grafana",)
CONVERGED_WITHIN_S = 420


@dataclass
class Swarm:
    workdir: Path
    env: dict[str, str]

    def service(self, name: str) -> str:
        return f"{STACK}_{name}"

    @property
    def trust(self) -> ssl.SSLContext:
        """What a client of the edge trusts: the stack's gateway CA secret."""
        return tls.client_context(self.workdir / "secrets" / tls.CA_SECRET)

    def deploy(self) -> None:
        sh("docker", "stack", "deploy", "--resolve-image", "never", "-c", "stack.yml",
           "-c", "simulator.yml", STACK, cwd=self.workdir, env=self.env)

    def replicas(self) -> dict[str, tuple[int, int]]:
        """Running and desired tasks by service (without the stack prefix)."""
        out = sh("docker", "service", "ls", "--filter", f"label=com.docker.stack.namespace={STACK}",
                 "--format", "{{.Name}} {{.Replicas}}", quiet=True).stdout
        found = {}
        for line in out.splitlines():
            name, counts = line.split()[:2]
            running, desired = counts.split("/")
            found[name.removeprefix(f"{STACK}_")] = (int(running), int(desired))
        return found

    def containers(self, name: str, *, healthy: bool = False) -> list[str]:
        args = ["docker", "ps", "-q", "--filter", f"label=com.docker.swarm.service.name="
                f"{self.service(name)}"]
        if healthy:
            args += ["--filter", "health=healthy"]
        return sh(*args, quiet=True).stdout.split()

    def wait_converged(self, within_s: float = CONVERGED_WITHIN_S) -> dict[str, tuple[int, int]]:
        """Every service at its desired count, and as many healthy containers."""
        deadline = time.monotonic() + within_s
        state: dict[str, tuple[int, int]] = {}
        while time.monotonic() < deadline:
            state = {k: v for k, v in self.replicas().items() if k not in ABSENT}
            if state and all(r == d and len(self.containers(n, healthy=True)) == d
                             for n, (r, d) in state.items()):
                return state
            time.sleep(3)
        tasks = sh("docker", "stack", "ps", "--no-trunc", "--format",
                   "{{.Name}} {{.CurrentState}} {{.Error}}", STACK, check=False).stdout
        raise AssertionError(f"not converged after {within_s}s: {state}\n{tasks[-4000:]}")

    def update_state(self, name: str) -> str:
        out = sh("docker", "service", "inspect", self.service(name), "--format",
                 "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}", quiet=True).stdout
        return out.strip()

    def wait_update(self, name: str, states: tuple[str, ...], within_s: float = 420) -> str:
        deadline = time.monotonic() + within_s
        state = ""
        while time.monotonic() < deadline:
            state = self.update_state(name)
            if state in states:
                return state
            time.sleep(2)
        raise AssertionError(f"{name}'s update is {state!r} after {within_s}s, not {states}")

    def image(self, name: str) -> str:
        out = sh("docker", "service", "inspect", self.service(name), "--format",
                 "{{.Spec.TaskTemplate.ContainerSpec.Image}}", quiet=True).stdout
        return out.strip()

    def token(self) -> str:
        gateway = self.containers("payment-gateway-service")[0]
        return sh("docker", "exec", gateway, "nilecare", "token", "--role", "accountant",
                  "--facility", "fac-1", quiet=True).stdout.strip()

    def simulator(self, provider: str, **control: object) -> None:
        """Set the simulator's control for `provider`, from a gateway container (the simulator
        has no published port; the gateways reach it on the frontend overlay)."""
        gateway = self.containers("payment-gateway-service")[0]
        url = f"http://payment-provider-simulator:{deployment.SIMULATOR_PORT}/_control/{provider}"
        sh("docker", "exec", gateway, "python3", "-c",
           "import sys,urllib.request;urllib.request.urlopen(urllib.request.Request("
           f"'{url}',data=sys.argv[1].encode(),method='PUT',"
           "headers={'Content-Type':'application/json'}),timeout=10).read()",
           json.dumps(control), quiet=True)

    def wait_edge(self, within_s: float = 60) -> None:
        """Until the edge answers /health through a replica (its checks and DNS lag the
        swarm's view of healthy tasks by a few seconds)."""
        deadline = time.monotonic() + within_s
        status = 0
        while time.monotonic() < deadline:
            try:
                status = httpx.get(f"{EDGE_URL}/health", verify=self.trust, timeout=5).status_code
            except httpx.HTTPError:
                status = 0
            if status == 200:
                return
            time.sleep(1)
        raise AssertionError(f"the edge answers /health with {status} after {within_s}s")

    def sql(self, query: str) -> list[list[str]]:
        mysql = self.containers("mysql-payment")[0]
        out = sh("docker", "exec", mysql, "sh", "-c",
                 'MYSQL_PWD="$(cat /run/secrets/database_password)" mysql -h 127.0.0.1 '
                 f"-u payments -N -B nilecare_payments -e \"{query}\"", quiet=True).stdout
        return [line.split("\t") for line in out.splitlines()]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The swarm's Prometheus answering an instant query: its result vector."""
        prometheus = self.containers("prometheus")[0]
        url = "http://127.0.0.1:9090/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        out = sh("docker", "exec", prometheus, "wget", "-qO-", url, quiet=True).stdout
        result: list[dict[str, Any]] = json.loads(out)["data"]["result"]
        return result

    def alerts(self, name: str) -> list[dict[str, Any]]:
        """The swarm's Alertmanager's active alerts named `name` (with their receivers)."""
        alertmanager = self.containers("alertmanager")[0]
        url = ("http://127.0.0.1:9093/api/v2/alerts?active=true&silenced=false&"
               + urllib.parse.urlencode({"filter": f'alertname="{name}"'}))
        out = sh("docker", "exec", alertmanager, "wget", "-qO-", url, quiet=True).stdout
        found: list[dict[str, Any]] = json.loads(out)
        return found

    def metric(self, container: str, port: int, pattern: str) -> float:
        """The sum of the samples of `container`'s /metrics whose line matches `pattern` (the
        gateway's over HTTPS, checked against the CA secret it holds)."""
        if port == deployment.GATEWAY_PORT:
            fetch = ("import ssl,urllib.request;c=ssl.create_default_context(cafile="
                     f"'/run/secrets/{tls.CA_SECRET}');print(urllib.request.urlopen("
                     f"'https://127.0.0.1:{port}/metrics',context=c).read().decode())")
        else:
            fetch = ("import urllib.request;print(urllib.request.urlopen("
                     f"'http://127.0.0.1:{port}/metrics').read().decode())")
        out = sh("docker", "exec", container, "python3", "-c", fetch, quiet=True).stdout
        return sum(float(line.rsplit(" ", 1)[1]) for line in out.splitlines()
                   if not line.startswith("#") and re.search(pattern, line))


@dataclass
class Traffic:
    """Keyed creates through the edge from a few threads, at a steady pace. Each key is sent
    until it is answered 201/200 (with `retry`), or once; every answer is kept."""

    token: str
    trust: ssl.SSLContext
    marker: str = field(default_factory=lambda: f"swarm-{uuid.uuid4().hex[:8]}")
    retry: bool = False
    answers: dict[str, list[int]] = field(default_factory=dict)
    payments: dict[str, str] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _send(self, client: httpx.Client, key: str) -> None:
        body = {"provider": "zain_cash", "amount": "150.00", "currency": "SDG",
                "patient_id": self.marker, "payer_phone": "+249912345678"}
        # The gateway's idempotency lock (60 s) outlives a gateway killed mid-request.
        deadline = time.monotonic() + 150
        while True:
            try:
                response = client.post(f"{EDGE_URL}/api/v1/payments", json=body, headers={
                    "Authorization": f"Bearer {self.token}", "Idempotency-Key": key})
                status = response.status_code
            except httpx.HTTPError:
                status = 0
            with self._lock:
                self.answers.setdefault(key, []).append(status)
                if status in (200, 201):
                    self.payments[key] = response.json()["id"]
            if status in (200, 201) or not self.retry or time.monotonic() > deadline:
                return
            time.sleep(0.5)

    def _run(self, worker: int, pace_s: float) -> None:
        with httpx.Client(timeout=30, verify=self.trust) as client:
            n = 0
            while not self._stop.is_set():
                self._send(client, f"{self.marker}-{worker}-{n}")
                n += 1
                self._stop.wait(pace_s)

    @contextmanager
    def running(self, threads: int = 4, pace_s: float = 0.2) -> Iterator[Traffic]:
        workers = [threading.Thread(target=self._run, args=(i, pace_s), daemon=True)
                   for i in range(threads)]
        for w in workers:
            w.start()
        try:
            yield self
        finally:
            self._stop.set()
            for w in workers:
                w.join(timeout=200)

    def failed(self) -> dict[str, list[int]]:
        """Keys never answered with a payment."""
        return {k: v for k, v in self.answers.items() if k not in self.payments}

    def first_try_failures(self) -> dict[str, list[int]]:
        return {k: v for k, v in self.answers.items() if v[0] not in (200, 201)}


def swarm_state() -> str:
    """The engine's swarm state (active, inactive), or "" when no engine answers yet."""
    return sh("docker", "info", "--format", "{{.Swarm.LocalNodeState}}", quiet=True,
              check=False).stdout.strip()


@contextmanager
def deployed(workdir: Path, *, keep: bool = False) -> Iterator[Swarm]:
    """dockerd and the images, `docker swarm init` with the node labelled for every pinned
    service, the stack rendered (overlays unencrypted: no ESP here) and deployed, converged;
    at the end the stack removed, the swarm left and its volumes deleted (unless `keep`)."""
    images = build_images()
    compose.write_secret_files(topology.build(), workdir / "secrets")
    assert swarm.main(["--plain-overlay", "--output", str(workdir),
                       "--secrets", str(workdir / "secrets")]) == 0
    sh("docker", "swarm", "init", "--advertise-addr", "127.0.0.1")
    try:
        node = sh("docker", "node", "ls", "-q", quiet=True).stdout.split()[0]
        labels = [arg for label in (STORES_NODE, MONITORING_NODE, EDGE_NODE)
                  for arg in ("--label-add", f"{label}=true")]
        sh("docker", "node", "update", *labels, node)
        stack = Swarm(workdir, {**os.environ, **images})
        stack.deploy()
        for name in ABSENT:
            sh("docker", "service", "scale", "--detach", f"{STACK}_{name}=0")
        stack.wait_converged()
        stack.wait_edge()
        yield stack
    finally:
        if not keep:
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


def payments_of(swarm: Swarm, marker: str) -> dict[str, str]:
    """id → status of the payments `marker`'s traffic created, from the database."""
    rows = swarm.sql(f"SELECT public_id, status FROM payments WHERE patient_id = '{marker}'")
    return dict((row[0], row[1]) for row in rows)
