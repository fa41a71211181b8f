"""Every secret of the stack: from secret config when set, otherwise a generated random value."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_random as random

from infra.topology import Secret, SecretKind


class MissingSecretError(ValueError):
    """An externally issued credential has no secret config value in a stack that needs it."""


@dataclass
class StackSecretsArgs:
    secrets: tuple[Secret, ...]
    provided: Mapping[str, pulumi.Output[str]]
    # Production refuses random stand-ins for credentials a bank or PagerDuty issues.
    require_external: bool
    config_keys: Mapping[str, str]


class StackSecrets(pulumi.ComponentResource):
    values: dict[str, pulumi.Output[str]]

    def __init__(
        self, name: str, args: StackSecretsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("nilecare:deploy:StackSecrets", name, None, opts)
        missing = [
            args.config_keys[s.name]
            for s in args.secrets
            if s.kind is SecretKind.EXTERNAL and args.provided.get(s.name) is None
        ]
        if args.require_external and missing:
            raise MissingSecretError(
                "these credentials need secret config: "
                + ", ".join(f"nilecare:{key}" for key in missing)
                + " (pulumi config set --secret nilecare:<key> <value>)"
            )
        self.values = {}
        for secret in args.secrets:
            fallback = self._fallback(name, secret, args.require_external)
            provided = args.provided.get(secret.name)
            if provided is None:
                assert fallback is not None  # an unset required credential raised above
                value = fallback
            else:
                # Pulumi.yaml declares every secret with an empty default, so "" means unset;
                # the choice happens on values and creates no resources.
                value = pulumi.Output.all(provided, fallback).apply(
                    functools.partial(_choose, key=args.config_keys[secret.name])
                )
            self.values[secret.name] = pulumi.Output.secret(value)
        self.register_outputs({"values": self.values})

    def _fallback(
        self, name: str, secret: Secret, require_external: bool
    ) -> pulumi.Output[str] | None:
        if secret.kind is SecretKind.EXTERNAL and require_external:
            return None
        if secret.placeholder is not None:
            return pulumi.Output.from_input(secret.placeholder)
        # RandomBytes keeps `hex` secret in the state; hex is what the service parses.
        return random.RandomBytes(
            f"{name}-{secret.name}",
            length=secret.hex_bytes,
            opts=pulumi.ResourceOptions(parent=self),
        ).hex


def _choose(pair: list[str | None], key: str) -> str:
    provided, fallback = pair
    if provided:
        return provided
    if fallback is None:
        raise MissingSecretError(f"nilecare:{key} is empty; set it with --secret")
    return fallback
