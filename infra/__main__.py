"""The NileCare payments stack: reads the stack config and wires the deployment components."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pulumi_docker as docker

from infra import topology
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
from infra.stack_config import StackConfig, config_key
from service import deployment

REPO_ROOT = Path(__file__).resolve().parent.parent

config = StackConfig.load(pulumi.Config())
model = topology.build(
    config.sizing,
    app_env=config.app_env,
    log_level=config.log_level,
    publish_backend_ports=config.publish_backend_ports,
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
    ),
)
networks = Networks(
    "networks", NetworksArgs(model.networks, config.name_prefix), opts=stack_opts
)
volumes = Volumes("volumes", VolumesArgs(model.volumes, config.name_prefix), opts=stack_opts)

images: dict[str, ServiceImage] = {}
for image in model.images():
    builds = image.variable == topology.NILECARE_IMAGE.variable and config.build_image
    images[image.variable] = ServiceImage(
        image.variable.lower().replace("_", "-"),
        ServiceImageArgs(
            name=config.images[image.variable],
            build=builds,
            context=str(REPO_ROOT),
            build_args={"BASE_IMAGE": config.base_image},
        ),
        opts=stack_opts,
    )

containers: dict[str, ServiceContainer] = {}
for service in model.start_order(config.profiles):
    containers[service.name] = ServiceContainer(
        service.name,
        ServiceContainerArgs(
            service=service,
            container_name=f"{config.name_prefix}{service.name}",
            image=images[service.image.variable].image_id,
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

pulumi.export("gatewayUrl", f"http://{config.public_host}:{deployment.GATEWAY_PORT}")
pulumi.export("metricsUrl", f"http://{config.public_host}:{deployment.EXPORTER_PORT}"
              f"{deployment.METRICS_PATH}")
pulumi.export("containerNames", {name: c.container_name for name, c in containers.items()})
