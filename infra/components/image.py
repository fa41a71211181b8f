"""One container image: built from the repo's Dockerfile, or taken by name (a tag or a mirror)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_docker as docker


@dataclass
class ServiceImageArgs:
    name: pulumi.Input[str]
    build: bool = False
    context: str = "."
    dockerfile: str = "Dockerfile"
    build_args: dict[str, pulumi.Input[str]] = field(default_factory=dict)


class ServiceImage(pulumi.ComponentResource):
    image_id: pulumi.Output[str]
    ref: pulumi.Output[str]

    def __init__(
        self, name: str, args: ServiceImageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("nilecare:deploy:ServiceImage", name, None, opts)
        build = (
            docker.RemoteImageBuildArgs(
                context=args.context,
                dockerfile=args.dockerfile,
                build_args=args.build_args,
                tags=[args.name],
            )
            if args.build
            else None
        )
        # keep_locally: a destroy must not delete an image another stack or compose still runs.
        image = docker.RemoteImage(
            name,
            name=args.name,
            build=build,
            keep_locally=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.image_id = image.image_id
        self.ref = pulumi.Output.from_input(args.name)
        self.register_outputs({"image_id": self.image_id, "ref": self.ref})
