"""The product as it runs for a fire drill: a throwaway MariaDB and Redis, the provider
simulator, the gateway, both workers and the exporter, each a real process on 127.0.0.1,
and the file_sd target files that tell Prometheus where they are."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
import yaml
from sqlalchemy import create_engine, text

from infra.monitoring.prometheus_config import ALERTMANAGER_JOB, jobs
from infra.monitoring.signals import DISCOVERY_DELAY
from service import tls
from service.api.auth import mint
from service.settings import Settings
from tests.conftest import TEST_JWT_SECRET, base_environ
from tests.servers import Server, free_port, mariadb_server, redis_server, serving

DATABASE = "nilecare_drill"
TOOLS = {"prometheus": "prometheus", "prometheus-alertmanager": "prometheus-alertmanager"}
# Process name in the drill spec → the nilecare command that runs it, and its scrape job.
COMMANDS = {
    "simulator": ("simulator",),
    "gateway": ("serve",),
    "worker": ("worker",),
    "reconciliation-worker": ("reconciliation-worker",),
    "exporter": ("exporter",),
}
JOBS = {"gateway": "payment-gateway", "worker": "payment-worker",
        "reconciliation-worker": "payment-reconciliation-worker",
        "exporter": "payment-metrics-exporter"}


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"`{name}` is not installed: apt-get install -y {TOOLS[name]}")
    return found


class Product(Protocol):
    """What a drill needs of the running product, wherever it runs (processes on 127.0.0.1
    here, a swarm in tests/drill/swarm.py): its API and simulator, the faults, and where the
    drill's Prometheus finds it."""

    @property
    def gateway(self) -> str: ...
    @property
    def trust(self) -> ssl.SSLContext: ...
    @property
    def ca(self) -> bytes: ...  # the gateway's CA certificate (PEM)
    # Whether stopping a scraped process takes its targets out of discovery (a swarm drops
    # a service's tasks) rather than leaving a target that fails its scrapes.
    stop_vanishes: bool
    # Seconds the drill's Prometheus needs to see a target leave discovery.
    discovery_delay: int
    # Where the drill's Alertmanagers listen, so that its Prometheus reaches them.
    alertmanager_host: str

    def token(self, subject: str, roles: tuple[str, ...] = ("accountant",)) -> str: ...
    def controls(self) -> dict[str, dict[str, Any]]: ...
    def control(self, provider: str, values: dict[str, Any]) -> None: ...
    def reconcile(self, files: dict[str, str]) -> None: ...
    def stop(self, name: str) -> None: ...
    def start(self, name: str) -> None: ...
    def freeze(self, name: str) -> None: ...
    def thaw(self, name: str) -> None: ...
    def undiscover(self, job: str) -> None: ...
    def rediscover(self, job: str) -> None: ...
    def add_targets(self, directory: Path, alertmanager: str) -> None: ...
    def prometheus(self, workdir: Path) -> AbstractContextManager[str]: ...


class Process(Server):
    """One nilecare process (`python -m service.cli ARGS`), ready once its /health answers;
    what it prints goes to its log."""

    def __init__(self, name: str, args: tuple[str, ...], env: dict[str, str], log: Path,
                 port: int, trust: ssl.SSLContext | None = None) -> None:
        scheme = "https" if trust else "http"
        super().__init__([sys.executable, "-m", "service.cli", *args], port, log, 60,
                         f"{scheme}://127.0.0.1:{port}", env=env, output=log)
        self.name = name
        self.trust = trust

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=2,
                             verify=self.trust or True).status_code == 200
        except httpx.HTTPError:
            return False


@dataclass
class System:
    """Everything the drill faults, with the addresses the stacks scrape."""

    workdir: Path
    database: Server
    redis: Server
    processes: dict[str, Process] = field(default_factory=dict)
    scrape_ports: dict[str, int] = field(default_factory=dict)  # job → 127.0.0.1 port
    target_dirs: list[Path] = field(default_factory=list)
    hidden: set[str] = field(default_factory=set)  # jobs whose targets are undiscovered
    # The gateway's TLS files by secret name (the CA is what Prometheus checks it against).
    tls_files: dict[str, Path] = field(default_factory=dict)
    stop_vanishes: bool = False
    discovery_delay: int = DISCOVERY_DELAY  # file_sd
    alertmanager_host: str = "127.0.0.1"

    @property
    def database_url(self) -> str:
        return f"{self.database.url}/{DATABASE}"

    @property
    def gateway(self) -> str:
        """HTTPS, as the gateway serves wherever it is deployed (clients: `self.trust`)."""
        return self.processes["gateway"].url

    @property
    def trust(self) -> ssl.SSLContext:
        return tls.client_context(self.tls_files[tls.CA_SECRET])

    @property
    def ca(self) -> bytes:
        return self.tls_files[tls.CA_SECRET].read_bytes()

    @property
    def simulator(self) -> str:
        return f"http://127.0.0.1:{self.processes['simulator'].port}"

    @property
    def statements(self) -> Path:
        return self.workdir / "statements"

    def token(self, subject: str, roles: tuple[str, ...] = ("accountant",)) -> str:
        return mint(TEST_JWT_SECRET, subject, list(roles), "fac-drill", 12 * 3600)

    def controls(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = httpx.get(f"{self.simulator}/_control",
                                                     timeout=10).json()
        return found

    def control(self, provider: str, values: dict[str, Any]) -> None:
        httpx.put(f"{self.simulator}/_control/{provider}", json=values,
                  timeout=10).raise_for_status()

    def reconcile(self, files: dict[str, str]) -> None:
        """`files` (paths under the statement directory) written, then `nilecare reconcile`
        run at once (what the reconciliation worker runs at night)."""
        for name, content in files.items():
            path = self.statements / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
        done = subprocess.run([sys.executable, "-m", "service.cli", "reconcile"],
                              env=self.processes["gateway"].env, capture_output=True,
                              text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"nilecare reconcile failed:\n{done.stderr[-2000:]}")

    @contextmanager
    def prometheus(self, workdir: Path) -> Iterator[str]:
        """The drill's Prometheus for the render in `workdir`, on the file_sd targets the
        system writes; yields its URL."""
        address = f"127.0.0.1:{free_port()}"
        with serving("prometheus", [
            tool("prometheus"), f"--config.file={workdir / 'monitoring/prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'prom-data'}", f"--web.listen-address={address}",
        ], workdir / "prometheus.log", f"http://{address}/-/ready"):
            yield f"http://{address}"

    # --- faults -------------------------------------------------------------------------
    def _part(self, name: str) -> Server | Process:
        if name == "database":
            return self.database
        if name == "redis":
            return self.redis
        return self.processes[name]

    def stop(self, name: str) -> None:
        self._part(name).stop()

    def start(self, name: str) -> None:
        self._part(name).start()

    def freeze(self, name: str) -> None:
        self._part(name).freeze()

    def thaw(self, name: str) -> None:
        self._part(name).thaw()

    def undiscover(self, job: str) -> None:
        self.hidden.add(job)
        self.write_targets()

    def rediscover(self, job: str) -> None:
        self.hidden.discard(job)
        self.write_targets()

    # --- discovery ----------------------------------------------------------------------
    def add_targets(self, directory: Path, alertmanager: str) -> None:
        """A stack's targets directory: the system's jobs, and that stack's Alertmanager."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"{ALERTMANAGER_JOB}.yml").write_text(
            yaml.safe_dump([{"targets": [alertmanager]}]))
        self.target_dirs.append(directory)
        self.write_targets()

    def write_targets(self) -> None:
        for directory in self.target_dirs:
            for job, port in self.scrape_ports.items():
                path = directory / f"{job}.yml"
                if job in self.hidden:
                    path.unlink(missing_ok=True)
                else:
                    # Written aside and renamed: file_sd never reads half a file.
                    aside = path.with_suffix(".tmp")
                    aside.write_text(yaml.safe_dump([{"targets": [f"127.0.0.1:{port}"]}]))
                    aside.rename(path)


def _environment(workdir: Path, database_url: str, redis_url: str,
                 ports: dict[str, int], files: dict[str, Path]) -> dict[str, str]:
    # Only what the drill sets: a developer's own settings must not leak in.
    env = {k: v for k, v in os.environ.items() if k.upper() not in Settings.env_names()}
    env.update(base_environ(
        DATABASE_URL=database_url, REDIS_URL=redis_url, DATA_DIR=str(workdir / "data"),
        LOG_LEVEL="INFO", LOG_FORMAT="json",
        PROVIDER_SIMULATOR_URL=f"http://127.0.0.1:{ports['simulator']}",
        # The gateway serves HTTPS as it does when deployed; the simulator's webhooks and
        # Prometheus check it against the CA.
        GATEWAY_PUBLIC_URL=f"https://127.0.0.1:{ports['gateway']}",
        GATEWAY_TLS_CERT_FILE=str(files[tls.CERT_SECRET]),
        GATEWAY_TLS_KEY_FILE=str(files[tls.KEY_SECRET]),
        GATEWAY_TLS_CA_FILE=str(files[tls.CA_SECRET]),
        GATEWAY_PORT=str(ports["gateway"]), EXPORTER_PORT=str(ports["exporter"]),
        WORKER_METRICS_PORT=str(ports["worker"]),
        RECONCILIATION_METRICS_PORT=str(ports["reconciliation-worker"]),
        STATEMENT_DIR=str(workdir / "statements"),
        # The production provider timeout (the base test environment shortens it).
        PROVIDER_TIMEOUT_SECONDS=str(Settings.model_fields["provider_timeout_seconds"].default),
        # Far above the drill's traffic: the limiter must not be what fails payments.
        RATE_LIMIT_PER_MINUTE="100000",
    ))
    return env


@contextmanager
def running(workdir: Path) -> Iterator[System]:
    """Start everything (migrated database first); stop everything afterwards."""
    database = mariadb_server(workdir / "mariadb")
    redis = redis_server(workdir / "redis")
    database.start()
    redis.start()
    system = System(workdir, database, redis)
    try:
        engine = create_engine(database.url)
        with engine.begin() as connection:
            connection.execute(text(f"CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4"))
        engine.dispose()
        ports = {name: free_port() for name in COMMANDS}
        system.tls_files = tls.write_pair(tls.development_pair(), workdir / "tls")
        env = _environment(workdir, system.database_url, redis.url, ports, system.tls_files)
        (workdir / "statements").mkdir(parents=True, exist_ok=True)
        migrate = subprocess.run([sys.executable, "-m", "service.cli", "migrate"], env=env,
                                 capture_output=True, text=True, check=False)
        if migrate.returncode != 0:
            raise RuntimeError(f"migrations failed:\n{migrate.stderr[-3000:]}")
        for name, command in COMMANDS.items():
            args = (*command, "--port", str(ports[name])) if name == "simulator" else command
            system.processes[name] = Process(name, args, env, workdir / f"{name}.log",
                                             ports[name],
                                             system.trust if name == "gateway" else None)
        system.scrape_ports = {JOBS[name]: ports[name] for name in JOBS}
        known = {job.name for job in jobs()} - {ALERTMANAGER_JOB}
        if known != set(system.scrape_ports):
            raise RuntimeError(f"the deployment model scrapes {sorted(known)}; the drill runs "
                               f"{sorted(system.scrape_ports)}")
        for process in system.processes.values():
            process.start()
        yield system
    finally:
        for process in reversed(list(system.processes.values())):
            process.stop()
        redis.stop()
        database.stop()
