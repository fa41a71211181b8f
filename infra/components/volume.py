"""The stack's named volumes: MySQL data, Redis data, bank statements and monitoring state."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker


@dataclass
class VolumesArgs:
    names: tuple[str, ...]
    name_prefix: pulumi.Input[str]


class Volumes(pulumi.ComponentResource):
    names: dict[str, pulumi.Output[str]]

    def __init__(
        self, name: str, args: VolumesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("nilecare:deploy:Volumes", name, None, opts)
        self.names = {}
        for volume in args.names:
            resource = docker.Volume(
                f"{name}-{volume}",
                name=pulumi.Output.concat(args.name_prefix, "nilecare-", volume),
                labels=[docker.VolumeLabelArgs(label="com.nilecare.volume", value=volume)],
                # Losing the database volume loses payments: a replace must be deliberate.
                opts=pulumi.ResourceOptions(parent=self, protect=volume == "mysql-data"),
            )
            self.names[volume] = resource.name
        self.register_outputs({"names": self.names})
