"""One service of the topology as a Docker container, with its secrets uploaded as files."""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_docker as docker

from infra.topology import ALL_INTERFACES, LogRotation, Service


@dataclass
class ServiceContainerArgs:
    service: Service
    container_name: str
    image: pulumi.Input[str]
    networks: Mapping[str, pulumi.Input[str]]
    volumes: Mapping[str, pulumi.Input[str]]
    secrets: Mapping[str, pulumi.Output[str]]
    logging: LogRotation
    repo_root: Path
    name_prefix: str = ""


def _duration(seconds: int) -> str:
    return f"{seconds}s"


def secret_dirs(service: Service) -> tuple[str, ...]:
    """The directories a service's secret files live in (one private volume each)."""
    return tuple(sorted({posixpath.dirname(m.target) for m in service.secrets}))


class ServiceContainer(pulumi.ComponentResource):
    container_name: pulumi.Output[str]
    container_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: ServiceContainerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("nilecare:deploy:ServiceContainer", name, None, opts)
        service = args.service
        child = pulumi.ResourceOptions(parent=self)

        # Docker refuses to copy files into a read-only root filesystem, but not into a volume,
        # so each secret directory is a small volume private to this container.
        secret_volumes = [
            docker.ContainerVolumeArgs(
                volume_name=docker.Volume(
                    f"{name}-secrets{index}",
                    name=f"{args.name_prefix}{service.name}-secrets{index}",
                    opts=child,
                ).name,
                container_path=directory,
            )
            for index, directory in enumerate(secret_dirs(service))
        ]
        uploads = [
            docker.ContainerUploadArgs(
                file=mount.target,
                content=args.secrets[mount.secret],
                permissions="0444",
            )
            for mount in service.secrets
        ]
        uploads += self._file_uploads(service, args.repo_root)

        healthcheck = service.healthcheck
        container = docker.Container(
            name,
            name=args.container_name,
            image=args.image,
            command=list(service.command) or None,
            envs=[f"{key}={value}" for key, value in sorted(service.environment.items())],
            user=service.user,
            read_only=service.read_only,
            tmpfs={path: "rw,nosuid,nodev,size=64m" for path in service.tmpfs},
            ports=[
                docker.ContainerPortArgs(
                    internal=port.container, external=port.host, ip=port.host_ip or ALL_INTERFACES
                )
                for port in service.ports
            ],
            networks_advanced=[
                docker.ContainerNetworksAdvancedArgs(
                    name=args.networks[network], aliases=[service.name]
                )
                for network in service.networks
            ],
            volumes=[
                docker.ContainerVolumeArgs(
                    volume_name=args.volumes[mount.volume], container_path=mount.target
                )
                for mount in service.volumes
            ]
            + secret_volumes,
            uploads=uploads,
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=list(healthcheck.test),
                interval=_duration(healthcheck.interval_s),
                timeout=_duration(healthcheck.timeout_s),
                retries=healthcheck.retries,
                start_period=_duration(healthcheck.start_period_s),
            ),
            restart=service.restart,
            memory=service.limits.memory_mb,
            cpus=str(service.limits.cpus),
            log_driver=args.logging.driver,
            log_opts={"max-size": args.logging.max_size, "max-file": str(args.logging.max_file)},
            labels=[docker.ContainerLabelArgs(label="com.nilecare.service", value=service.name)],
            must_run=True,
            # Waiting for healthy is what gates the start of the services that depend on this.
            wait=True,
            wait_timeout=180,
            opts=child,
        )
        self.container_name = container.name
        self.container_id = container.id
        self.register_outputs(
            {"container_name": self.container_name, "container_id": self.container_id}
        )

    @staticmethod
    def _file_uploads(service: Service, repo_root: Path) -> list[docker.ContainerUploadArgs]:
        # Generated monitoring config travels over the Docker API, so a remote host needs no
        # checkout; the hash makes a changed rule file replace the container.
        uploads = []
        for mount in service.files:
            source = repo_root / mount.source
            files = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else (
                [source] if source.is_file() else []
            )
            if not files:
                pulumi.log.warn(f"{service.name}: {mount.source} is missing; run `make render`")
            for path in files:
                relative = path.relative_to(source).as_posix() if source.is_dir() else ""
                target = posixpath.join(mount.target, relative) if relative else mount.target
                uploads.append(
                    docker.ContainerUploadArgs(
                        file=target,
                        source=str(path),
                        source_hash=hashlib.sha256(path.read_bytes()).hexdigest(),
                    )
                )
        return uploads
