"""The topology on a swarm manager: overlay networks, secrets and configs as swarm objects,
and one docker.Service per service with the stack file's replicas, update, rollback,
restart and placement policies (deploy/swarm/stack.yml declares the same)."""

from __future__ import annotations

import base64
import hashlib
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_docker as docker

from infra.swarm import config_name
from infra.topology import LogRotation, Network, Service

# The update and restart policy every service shares; only the order depends on the service
# (see topology.Replication).
UPDATE_MONITOR = "30s"
RESTART_DELAY = "5s"
RESTART_WINDOW = "60s"


def _duration(seconds: int) -> str:
    return f"{seconds}s"


@dataclass
class SwarmNetworksArgs:
    networks: tuple[Network, ...]
    name_prefix: str
    encrypted: bool


class SwarmNetworks(pulumi.ComponentResource):
    """Overlay networks, attachable, encrypted between nodes unless the kernel lacks ESP."""

    ids: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: SwarmNetworksArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("nilecare:swarm:Networks", name, None, opts)
        self.ids = {}
        for network in args.networks:
            resource = docker.Network(
                f"{name}-{network.name}",
                name=f"{args.name_prefix}nilecare-{network.name}",
                driver="overlay",
                attachable=True,
                internal=network.internal,
                options={"encrypted": ""} if args.encrypted else None,
                labels=[docker.NetworkLabelArgs(label="com.nilecare.network", value=network.name)],
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.ids[network.name] = resource.id
        self.register_outputs({"ids": self.ids})


@dataclass
class SwarmObjectsArgs:
    secrets: Mapping[str, pulumi.Output[str]]  # name → value
    files: Mapping[str, str]  # config key (repository path) → content
    name_prefix: str = ""


class SwarmObjects(pulumi.ComponentResource):
    """Swarm secrets and configs. Neither can change in place: a new value is a new object
    (Pulumi names them, so the replacement is created before the old one goes) and the
    services that mount it roll onto it."""

    secrets: dict[str, docker.Secret]
    configs: dict[str, docker.ServiceConfig]

    def __init__(self, name: str, args: SwarmObjectsArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("nilecare:swarm:Objects", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.secrets = {
            key: docker.Secret(
                f"{name}-secret-{key}",
                data=value.apply(lambda v: base64.b64encode(v.encode()).decode()),
                labels=[docker.SecretLabelArgs(label="com.nilecare.secret", value=key)],
                opts=child,
            )
            for key, value in args.secrets.items()
        }
        self.configs = {}
        for path, content in args.files.items():
            digest = hashlib.sha256(content.encode()).hexdigest()[:10]
            self.configs[path] = docker.ServiceConfig(
                f"{name}-config-{path.replace('/', '-')}-{digest}",
                # Named as in the stack file (swarm refuses names past 64 characters); the
                # digest makes a changed file a new name, so the replacement can come first.
                name=f"{args.name_prefix}nilecare-{config_name(path, digest)}",
                data=base64.b64encode(content.encode()).decode(),
                labels=[docker.ServiceConfigLabelArgs(label="com.nilecare.file", value=path)],
                opts=child,
            )
        self.register_outputs({})


def config_files(service: Service, repo_root: Path, generated: Mapping[str, str]
                 ) -> dict[str, str]:
    """target → repository path of every file `service` mounts; promtool's and amtool's test
    directories stay behind, as in the stack file. `generated` files need not be on disk."""
    found = {}
    for mount in service.files:
        source = repo_root / mount.source
        if mount.source in generated or source.is_file():
            found[mount.target] = mount.source
            continue
        for path in sorted(source.rglob("*")):
            relative = path.relative_to(source)
            if path.is_file() and "tests" not in relative.parts:
                found[posixpath.join(mount.target, relative.as_posix())] = (
                    f"{mount.source}/{relative.as_posix()}")
    return found


@dataclass
class SwarmServiceArgs:
    service: Service
    image: pulumi.Input[str]
    replicas: int
    networks: Mapping[str, pulumi.Input[str]]
    objects: SwarmObjects
    files: Mapping[str, str]  # target → config key, from config_files()
    logging: LogRotation
    name_prefix: str = ""


class SwarmService(pulumi.ComponentResource):
    service_name: pulumi.Output[str]
    service_id: pulumi.Output[str]

    def __init__(self, name: str, args: SwarmServiceArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("nilecare:swarm:Service", name, None, opts)
        service, swarm = args.service, args.service.swarm
        health = service.healthcheck
        mounts = [docker.ServiceTaskSpecContainerSpecMountArgs(
            target=m.target, type="volume", source=f"{args.name_prefix}nilecare-{m.volume}")
            for m in service.volumes]
        # A swarm ignores a container's tmpfs list; a tmpfs mount is what it honours.
        mounts += [docker.ServiceTaskSpecContainerSpecMountArgs(target=path, type="tmpfs")
                   for path in service.tmpfs]
        mounts += [docker.ServiceTaskSpecContainerSpecMountArgs(
            target=h.target, type="bind", source=h.source, read_only=True)
            for h in service.host_paths]
        secrets = [docker.ServiceTaskSpecContainerSpecSecretArgs(
            secret_id=args.objects.secrets[m.secret].id,
            secret_name=args.objects.secrets[m.secret].name,
            file_name=m.target, file_mode=0o444)
            for m in service.secrets]
        configs = [docker.ServiceTaskSpecContainerSpecConfigArgs(
            config_id=args.objects.configs[key].id,
            config_name=args.objects.configs[key].name,
            file_name=target, file_mode=0o444)
            for target, key in sorted(args.files.items())]
        resource = docker.Service(
            name,
            name=f"{args.name_prefix}{service.name}",
            task_spec=docker.ServiceTaskSpecArgs(
                container_spec=docker.ServiceTaskSpecContainerSpecArgs(
                    image=args.image,
                    # The stack file's `command` is the container's arguments (the image's
                    # entrypoint stays), as `docker stack deploy` maps it.
                    args=list(service.command) or None,
                    env=dict(sorted(service.environment.items())) or None,
                    user=service.user,
                    read_only=service.read_only,
                    mounts=mounts or None,
                    secrets=secrets or None,
                    configs=configs or None,
                    healthcheck=docker.ServiceTaskSpecContainerSpecHealthcheckArgs(
                        tests=list(health.test),
                        interval=_duration(health.interval_s),
                        timeout=_duration(health.timeout_s),
                        retries=health.retries,
                        start_period=_duration(health.start_period_s),
                    ),
                ),
                resources=docker.ServiceTaskSpecResourcesArgs(
                    limits=docker.ServiceTaskSpecResourcesLimitsArgs(
                        memory_bytes=service.limits.memory_mb * 1024 * 1024,
                        nano_cpus=int(service.limits.cpus * 1e9),
                    ),
                ),
                restart_policy=docker.ServiceTaskSpecRestartPolicyArgs(
                    condition="any", delay=RESTART_DELAY, window=RESTART_WINDOW),
                placement=docker.ServiceTaskSpecPlacementArgs(
                    constraints=list(swarm.constraints)) if swarm.constraints else None,
                networks_advanceds=[
                    docker.ServiceTaskSpecNetworksAdvancedArgs(id=args.networks[network],
                                                               aliases=[service.name])
                    for network in service.networks
                ],
                log_driver=docker.ServiceTaskSpecLogDriverArgs(
                    name=args.logging.driver,
                    options={"max-size": args.logging.max_size,
                             "max-file": str(args.logging.max_file)},
                ),
            ),
            mode=docker.ServiceModeArgs(
                replicated=docker.ServiceModeReplicatedArgs(replicas=args.replicas)),
            update_config=docker.ServiceUpdateConfigArgs(
                parallelism=1, order=swarm.update_order, failure_action="rollback",
                monitor=UPDATE_MONITOR, max_failure_ratio="0"),
            rollback_config=docker.ServiceRollbackConfigArgs(
                parallelism=1, order=swarm.update_order, failure_action="pause",
                monitor=UPDATE_MONITOR),
            # DNS round robin, and ports in host mode: neither needs the kernel's IPVS.
            endpoint_spec=docker.ServiceEndpointSpecArgs(
                mode="dnsrr",
                ports=[docker.ServiceEndpointSpecPortArgs(
                    target_port=p.container, published_port=p.host, protocol="tcp",
                    publish_mode="host") for p in service.ports] or None,
            ),
            labels=[docker.ServiceLabelArgs(label="com.nilecare.service", value=service.name)],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.service_name = resource.name
        self.service_id = resource.id
        self.register_outputs({"service_name": self.service_name, "service_id": self.service_id})
