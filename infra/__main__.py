"""The NileCare payments stack: reads the stack config and wires the deployment components."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pulumi_docker as docker

from infra import swarm, topology
from infra.components import (
    Networks,
    NetworksArgs,
    ServiceContainer,
    ServiceContainerArgs,
    ServiceImage,
    ServiceImageArgs,
    StackSecrets,
    StackSecretsArgs,
    Volumes,
    VolumesArgs,
)
from infra.components.swarm import (
    SwarmNetworks,
    SwarmNetworksArgs,
    SwarmObjects,
    SwarmObjectsArgs,
    SwarmService,
    SwarmServiceArgs,
    config_files,
)
from infra.stack_config import StackConfig, config_key
from infra.topology.edge import CONFIG as EDGE_CONFIG
from infra.topology.edge import haproxy_config
from service import deployment, tls

REPO_ROOT = Path(__file__).resolve().parent.parent

config = StackConfig.load(pulumi.Config())
model = (
    swarm.swarm_model(config.sizing, app_env=config.app_env, log_level=config.log_level)
    if config.mode == "swarm" else
    topology.build(
        config.sizing,
        app_env=config.app_env,
        log_level=config.log_level,
        publish_backend_ports=config.publish_backend_ports,
    )
)

# A remote host (ssh://deploy@host) gets an explicit provider; children inherit it.
provider = (
    docker.Provider("docker-host", host=config.docker_host) if config.docker_host else None
)
stack_opts = pulumi.ResourceOptions(provider=provider) if provider else None

secrets = StackSecrets(
    "secrets",
    StackSecretsArgs(
        secrets=model.secrets,
        provided=config.secrets,
        require_external=config.require_external_secrets,
        config_keys={s.name: config_key(s.name) for s in model.secrets},
        # Clients on other hosts check the certificate under the host's public name.
        tls_names=tuple(dict.fromkeys((*tls.DEVELOPMENT_NAMES, config.public_host))),
    ),
)
images: dict[str, pulumi.Input[str]] = {}
for image in model.images():
    builds = (image.variable == topology.NILECARE_IMAGE.variable and config.build_image
              and config.mode == "host")  # a swarm's nodes pull: nothing is built here
    images[image.variable] = ServiceImage(
        image.variable.lower().replace("_", "-"),
        ServiceImageArgs(
            name=config.images[image.variable],
            build=builds,
            context=str(REPO_ROOT),
            build_args={"BASE_IMAGE": config.base_image},
        ),
        opts=stack_opts,
    ).image_id if config.mode == "host" else config.images[image.variable]


def host_mode() -> dict[str, ServiceContainer]:
    """One container per enabled service, each started after what it depends on."""
    networks = Networks(
        "networks", NetworksArgs(model.networks, config.name_prefix), opts=stack_opts
    )
    volumes = Volumes("volumes", VolumesArgs(model.volumes, config.name_prefix),
                      opts=stack_opts)
    containers: dict[str, ServiceContainer] = {}
    for service in model.start_order(config.profiles):
        containers[service.name] = ServiceContainer(
            service.name,
            ServiceContainerArgs(
                service=service,
                container_name=f"{config.name_prefix}{service.name}",
                image=images[service.image.variable],
                networks=networks.ids,
                volumes=volumes.names,
                secrets=secrets.values,
                logging=model.logging,
                repo_root=REPO_ROOT,
                name_prefix=config.name_prefix,
            ),
            opts=pulumi.ResourceOptions.merge(
                stack_opts or pulumi.ResourceOptions(),
                pulumi.ResourceOptions(depends_on=[containers[d] for d in service.depends_on]),
            ),
        )
    return containers


def swarm_mode() -> dict[str, SwarmService]:
    """One swarm service per enabled service, against a swarm manager (`dockerHost`): the
    stack file's replicas, update, rollback and placement, the edge in front of the
    gateways, and secrets and configs as swarm objects."""
    networks = SwarmNetworks(
        "networks", SwarmNetworksArgs(model.networks, config.name_prefix,
                                      encrypted=not config.plain_overlay), opts=stack_opts)
    enabled = model.enabled(config.profiles)
    generated = {EDGE_CONFIG: haproxy_config(swarm.HEADER, model.service(swarm.GATEWAY))}
    files = {s.name: config_files(s, REPO_ROOT, generated) for s in enabled}
    contents = {key: generated.get(key) or (REPO_ROOT / key).read_text(encoding="utf-8")
                for mounted in files.values() for key in mounted.values()}
    objects = SwarmObjects("objects", SwarmObjectsArgs(secrets.values, contents,
                                                       config.name_prefix), opts=stack_opts)
    return {
        s.name: SwarmService(
            s.name,
            SwarmServiceArgs(
                service=s,
                image=images[s.image.variable],
                replicas=config.replicas.get(s.swarm.variable or "", s.swarm.replicas),
                networks=networks.ids,
                objects=objects,
                files=files[s.name],
                logging=model.logging,
                name_prefix=config.name_prefix,
            ),
            opts=stack_opts,
        )
        for s in enabled
    }


pulumi.export("gatewayUrl", f"https://{config.public_host}:{deployment.GATEWAY_PORT}")
if config.mode == "swarm":
    services = swarm_mode()
    pulumi.export("serviceNames", {name: s.service_name for name, s in services.items()})
else:
    containers = host_mode()
    pulumi.export("metricsUrl", f"http://{config.public_host}:{deployment.EXPORTER_PORT}"
                  f"{deployment.METRICS_PATH}")
    pulumi.export("containerNames", {name: c.container_name for name, c in containers.items()})
