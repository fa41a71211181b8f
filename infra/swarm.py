"""Render the Docker Swarm stack from the topology (make render-swarm, its -check).

deploy/swarm/stack.yml holds the six NileCare services, the monitoring and the edge (HAProxy
in front of the gateway replicas); deploy/swarm/simulator.yml adds the provider simulator
for tests and demos (`docker stack deploy -c stack.yml -c simulator.yml`). What differs from
compose is only what a swarm needs: replicas and update/rollback policy, placement of the
services that own a volume, overlay networks, files as swarm configs, and no host-access
network (a swarm publishes the edge alone)."""

from __future__ import annotations

import argparse
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from infra import topology
from infra.compose import template_environment
from infra.generated import header, settle
from infra.topology import FileMount, HostPath, Service, Sizing, Topology
from infra.topology.edge import CONFIG as EDGE_CONFIG
from infra.topology.edge import edge, haproxy_config

ROOT = Path(__file__).resolve().parent.parent
DIRECTORY = Path("deploy/swarm")
TEMPLATE = "stack.yml.j2"
HEADER = header("infra/topology/ (infra/swarm.py)")
GATEWAY = "payment-gateway-service"
COMPOSE_PROMETHEUS = "monitoring/prometheus.yml"
SWARM_PROMETHEUS = "monitoring/prometheus.swarm.yml"
DOCKER_SOCKET = "/var/run/docker.sock"


# What a config's name may use of swarm's 64 characters: the rest is for `<stack name>_`.
NAME_ROOM = 48


@dataclass(frozen=True)
class Config:
    """One file mounted read-only, as a swarm config named by its content (configs are
    immutable: a changed file is a new config, and the service update swaps it)."""

    name: str
    source: str  # relative to the stack file's directory
    target: str


def swarm_model(sizing: Sizing = "small", *, app_env: str = "development",
                log_level: str = "INFO") -> Topology:
    """The topology a swarm runs: the edge in front of the gateway and the only service
    that publishes a port. A swarm cannot publish on a node's loopback alone, as compose
    does for the exporter and the monitoring; they are reached over the overlay networks."""
    model = topology.build(sizing, app_env=app_env, log_level=log_level,
                           publish_backend_ports=False)
    services = tuple(_for_swarm(replace(s, ports=())) for s in model.services)
    return Topology((*services, edge()), model.networks, model.volumes, model.secrets,
                    model.logging)


def _for_swarm(service: Service) -> Service:
    """Prometheus discovers the tasks from the Docker API (dockerswarm_sd): its swarm config,
    the socket of the manager it runs on, and root to read it (the socket is root's and the
    docker group's, whose id differs per host, and a stack cannot add a group)."""
    if service.name != "prometheus":
        return service
    files = tuple(FileMount(SWARM_PROMETHEUS, m.target) if m.source == COMPOSE_PROMETHEUS
                  else m for m in service.files)
    return replace(service, files=files, user="0:0",
                   host_paths=(HostPath(DOCKER_SOCKET, DOCKER_SOCKET),),
                   swarm=replace(service.swarm, managers_only=True))


def _files(mount: FileMount, root: Path) -> Iterator[tuple[str, str]]:
    """(repository path, target) of every file under `mount`; promtool's and amtool's test
    directories stay behind."""
    source = root / mount.source
    if source.is_file():
        yield mount.source, mount.target
        return
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if path.is_file() and "tests" not in relative.parts:
            yield f"{mount.source}/{relative.as_posix()}", f"{mount.target}/{relative.as_posix()}"


def configs(service: Service, root: Path, base: Path,
            contents: dict[str, str]) -> tuple[Config, ...]:
    """The swarm configs of `service`'s files. Files in `contents` are written beside the
    stack file (in `base`); the rest are read from the repository at `root`."""
    found = []
    for mount in service.files:
        for source, target in _files(mount, root):
            text = contents.get(source)
            data = text.encode() if text is not None else (root / source).read_bytes()
            digest = hashlib.sha256(data).hexdigest()[:10]
            path = Path(source).name if text is not None else _relative(root / source, base)
            found.append(Config(config_name(source, digest), path, target))
    return tuple(found)


def config_name(source: str, digest: str) -> str:
    """A config's name: the file's name and its content's digest, within NAME_ROOM (swarm
    allows 64 characters, a stack's name or a prefix and a separator included)."""
    stem = Path(source).name.replace(".", "-")[:NAME_ROOM - len(digest) - 1]
    return f"{stem}-{digest}"


def _relative(path: Path, base: Path) -> str:
    return Path(os.path.relpath(path, base)).as_posix()


def render(model: Topology, *, simulator: bool = False, encrypted: bool = True,
           root: Path = ROOT, base: Path | None = None, secrets: Path | None = None,
           contents: dict[str, str] | None = None) -> str:
    """The stack file: every service but the simulator, or with `simulator` the simulator
    alone (a second file for `docker stack deploy -c`), to be written into `base` (default
    deploy/swarm/). `contents` holds the generated files written beside it (the edge's
    configuration)."""
    wanted = [s for s in model.services if (s.profile == "simulator") == simulator]
    if not wanted:
        raise ValueError("refusing to render a stack file with no services")
    known = contents or {}
    base = base if base is not None else root / DIRECTORY
    env = template_environment()
    service_configs = {s.name: configs(s, root, base, known) for s in wanted}
    text = env.get_template(TEMPLATE).render(
        header="# " + HEADER,
        services=wanted,
        configs=service_configs,
        # The same file mounted twice is one config.
        all_configs=list({c.name: c for cs in service_configs.values() for c in cs}.values()),
        networks=() if simulator else model.networks,
        volumes=() if simulator else model.volumes,
        secrets=() if simulator else model.secrets,
        logging=model.logging,
        encrypted=encrypted,
        project=topology.PROJECT,
        secrets_dir=_relative(secrets if secrets is not None else root / "secrets", base),
    )
    return text.rstrip("\n") + "\n"


def outputs(*, encrypted: bool = True, root: Path = ROOT, base: Path | None = None,
            secrets: Path | None = None, sizing: Sizing = "small") -> dict[str, str]:
    """Every file `make render-swarm` writes into `base` (default deploy/swarm/), by name."""
    model = swarm_model(sizing)
    cfg = haproxy_config(HEADER, model.service(GATEWAY))
    contents = {EDGE_CONFIG: cfg}
    return {
        Path(EDGE_CONFIG).name: cfg,
        "stack.yml": render(model, encrypted=encrypted, root=root, base=base,
                            secrets=secrets, contents=contents),
        "simulator.yml": render(model, simulator=True, root=root, base=base),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when a committed file differs from a fresh render")
    parser.add_argument("--output", type=Path, metavar="DIR", default=DIRECTORY,
                        help="write the files into DIR (default deploy/swarm/)")
    parser.add_argument("--secrets", type=Path, metavar="DIR",
                        help="the secret files' directory (default ./secrets/)")
    parser.add_argument("--sizing", choices=("small", "large"), default="small",
                        help="the services' memory and CPU limits (the committed stack: small)")
    parser.add_argument("--plain-overlay", action="store_true",
                        help="unencrypted overlay networks, for kernels without ESP (tests)")
    args = parser.parse_args(argv)
    args.output.mkdir(parents=True, exist_ok=True)
    status = 0
    secrets = args.secrets.resolve() if args.secrets else None
    for name, text in outputs(encrypted=not args.plain_overlay, base=args.output.resolve(),
                              secrets=secrets, sizing=args.sizing).items():
        status |= settle(args.output / name, text, check=args.check, target="render-swarm")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
