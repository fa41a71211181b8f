"""The stack's Docker networks: the internal backend, and the host-access bridge through which the
host reaches MySQL and Redis on their loopback ports (no NAT out, no inter-container traffic)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from infra.topology import Network


@dataclass
class NetworksArgs:
    networks: tuple[Network, ...]
    name_prefix: pulumi.Input[str]


class Networks(pulumi.ComponentResource):
    ids: dict[str, pulumi.Output[str]]

    def __init__(
        self, name: str, args: NetworksArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("nilecare:deploy:Networks", name, None, opts)
        self.ids = {}
        for network in args.networks:
            resource = docker.Network(
                f"{name}-{network.name}",
                name=pulumi.Output.concat(args.name_prefix, "nilecare-", network.name),
                driver="bridge",
                internal=network.internal,
                options=dict(network.driver_options) or None,
                labels=[docker.NetworkLabelArgs(label="com.nilecare.network", value=network.name)],
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.ids[network.name] = resource.name
        self.register_outputs({"ids": self.ids})
