"""Every secret of the stack: from secret config when set, otherwise a generated random value
(the gateway's TLS files: a development CA and the certificate it signed, kept in the state)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_random as random
import pulumi_tls as tls_provider

from infra.topology import Secret, SecretKind
from service import tls

VALIDITY_HOURS = tls.VALIDITY_DAYS * 24


class MissingSecretError(ValueError):
    """An externally issued credential has no secret config value in a stack that needs it."""


@dataclass
class StackSecretsArgs:
    secrets: tuple[Secret, ...]
    provided: Mapping[str, pulumi.Output[str]]
    # Production refuses random stand-ins for credentials a bank or PagerDuty issues.
    require_external: bool
    config_keys: Mapping[str, str]
    # What a generated (development) gateway certificate names.
    tls_names: tuple[str, ...] = tls.DEVELOPMENT_NAMES


class StackSecrets(pulumi.ComponentResource):
    values: dict[str, pulumi.Output[str]]

    def __init__(
        self, name: str, args: StackSecretsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("nilecare:deploy:StackSecrets", name, None, opts)
        issued = (SecretKind.EXTERNAL, SecretKind.CERTIFICATE)
        missing = [
            args.config_keys[s.name]
            for s in args.secrets
            if s.kind in issued and args.provided.get(s.name) is None
        ]
        if args.require_external and missing:
            raise MissingSecretError(
                "these credentials need secret config: "
                + ", ".join(f"nilecare:{key}" for key in missing)
                + " (pulumi config set --secret nilecare:<key> <value>)"
            )
        self.values = {}
        together = [s for s in args.secrets if s.kind is SecretKind.CERTIFICATE]
        if together:
            self.values.update(self._tls_values(name, together, args))
        for secret in args.secrets:
            if secret.kind is SecretKind.CERTIFICATE:
                continue
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

    def _tls_values(self, name: str, group: list[Secret],
                    args: StackSecretsArgs) -> dict[str, pulumi.Output[str]]:
        """The TLS files as one unit: all three from config, or (unless production) all three
        generated; a certificate beside a generated key would never load."""
        names = [s.name for s in group]
        development = (None if args.require_external
                       else self._development_tls(name, args.tls_names))
        provided = [args.provided.get(n) or "" for n in names]
        fallbacks = [development[n] if development else None for n in names]
        chosen = pulumi.Output.all(*provided, *fallbacks).apply(functools.partial(
            _choose_together, names=names, keys=[args.config_keys[n] for n in names]))
        return {n: pulumi.Output.secret(chosen.apply(functools.partial(_pick, name=n)))
                for n in names}

    def _development_tls(self, name: str, names: tuple[str, ...]) -> dict[str, pulumi.Output[str]]:
        """A private CA and the gateway certificate it signed, as service/tls.py makes them
        for compose: P-256, ten years, naming the gateway inside the stack and on the host."""
        child = pulumi.ResourceOptions(parent=self)
        ca_key = tls_provider.PrivateKey(f"{name}-tls-ca-key", algorithm="ECDSA",
                                         ecdsa_curve="P256", opts=child)
        ca = tls_provider.SelfSignedCert(
            f"{name}-tls-ca", private_key_pem=ca_key.private_key_pem, is_ca_certificate=True,
            validity_period_hours=VALIDITY_HOURS, set_subject_key_id=True,
            allowed_uses=["cert_signing", "crl_signing", "digital_signature"],
            subject=tls_provider.SelfSignedCertSubjectArgs(
                common_name="NileCare development CA", organization="NileCare development"),
            opts=child)
        key = tls_provider.PrivateKey(f"{name}-tls-key", algorithm="ECDSA", ecdsa_curve="P256",
                                      opts=child)
        dns_names, ip_addresses = tls.split_names(names)
        request = tls_provider.CertRequest(
            f"{name}-tls-request", private_key_pem=key.private_key_pem, dns_names=dns_names,
            ip_addresses=ip_addresses,
            subject=tls_provider.CertRequestSubjectArgs(common_name=tls.INTERNAL_NAME,
                                                        organization="NileCare development"),
            opts=child)
        cert = tls_provider.LocallySignedCert(
            f"{name}-tls-cert", cert_request_pem=request.cert_request_pem,
            ca_private_key_pem=ca_key.private_key_pem, ca_cert_pem=ca.cert_pem,
            validity_period_hours=VALIDITY_HOURS, set_subject_key_id=True,
            allowed_uses=["digital_signature", "key_agreement", "server_auth"], opts=child)
        return {tls.CA_SECRET: ca.cert_pem, tls.CERT_SECRET: cert.cert_pem,
                tls.KEY_SECRET: key.private_key_pem}

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


def _pick(found: dict[str, str], name: str) -> str:
    return found[name]


def _choose_together(values: list[str | None], names: list[str],
                     keys: list[str]) -> dict[str, str]:
    given, fallback = values[: len(names)], values[len(names):]
    if all(given):
        return {n: str(v) for n, v in zip(names, given, strict=True)}
    if any(given):
        missing = ", ".join(f"nilecare:{k}" for k, v in zip(keys, given, strict=True) if not v)
        raise MissingSecretError(f"the TLS files are set together; {missing} is empty")
    if not all(fallback):
        raise MissingSecretError("these need secret config: "
                                 + ", ".join(f"nilecare:{k}" for k in keys))
    return {n: str(v) for n, v in zip(names, fallback, strict=True)}


def _choose(pair: list[str | None], key: str) -> str:
    provided, fallback = pair
    if provided:
        return provided
    if fallback is None:
        raise MissingSecretError(f"nilecare:{key} is empty; set it with --secret")
    return fallback
