"""Render docker-compose.payment.yml from the topology (make render-compose, its -check)."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from pathlib import Path

import jinja2

from infra import topology
from infra.generated import header, settle
from infra.topology import Port, SecretKind, Topology
from service import tls

TEMPLATE_DIR = Path(__file__).parent / "templates"
TEMPLATE = "docker-compose.payment.yml.j2"
DEFAULT_OUTPUT = Path("docker-compose.payment.yml")
HEADER = "# " + header("infra/topology/ (infra/compose.py)")


def _quote(value: object) -> str:
    # A JSON string is a valid YAML double-quoted scalar, so every value is quoted one way.
    return json.dumps(str(value), ensure_ascii=False)


def _escape_dollar(value: str) -> str:
    # Compose interpolates ${VAR}; shell substitutions meant for the container need $$.
    return value.replace("$", "$$")


def _port(port: Port) -> str:
    prefix = f"{port.host_ip}:" if port.host_ip else ""
    return f"{prefix}{port.host}:{port.container}"


def template_environment() -> jinja2.Environment:
    """The Jinja2 environment of the compose-format templates (compose, swarm stack): strict
    about missing values, every value quoted one way (`q`), the container's own `$` escaped
    from compose's interpolation (`dollar`)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - YAML, not HTML; values are quoted by the q filter
    )
    env.filters["q"] = _quote
    env.filters["dollar"] = _escape_dollar
    env.filters["port"] = _port
    return env


def render(model: Topology) -> str:
    """The compose file for `model`; every service, profile helpers included."""
    if not model.services:
        raise ValueError("refusing to render a compose file with no services")
    env = template_environment()
    text = env.get_template(TEMPLATE).render(
        header=HEADER,
        services=model.services,
        networks=model.networks,
        volumes=model.volumes,
        secrets=model.secrets,
        logging=model.logging,
    )
    return text.rstrip("\n") + "\n"


class PartialTlsError(ValueError):
    """Some of the gateway's TLS files are there and some are not."""


def write_secret_files(model: Topology, directory: Path, *, force: bool = False) -> list[str]:
    """Write a random value for every secret file the compose file names; return the names
    written. Existing files are kept unless `force`: a new database password would lock the
    service out of a MySQL volume initialised with the old one."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
    written = []
    # The TLS files belong together (the CA signed the certificate, which fits the key): made
    # together when none is there, never beside an operator's.
    pair = [s.name for s in model.secrets if s.kind is SecretKind.CERTIFICATE]
    present = [name for name in pair if (directory / name).exists()]
    if present and len(present) < len(pair) and not force:
        missing = ", ".join(sorted(set(pair) - set(present)))
        raise PartialTlsError(f"{directory} holds {', '.join(present)} but not {missing}: "
                              "supply all three TLS files, or remove them all for a "
                              "development pair")
    renew = bool(pair) and (force or not present)
    tls_files = tls.development_pair().files() if renew else {}
    for secret in model.secrets:
        path = directory / secret.name
        if secret.kind is SecretKind.CERTIFICATE:
            if not renew:
                continue
            value = tls_files[secret.name]
        elif path.exists() and not force:
            continue
        else:
            value = (secret.placeholder or secrets.token_hex(secret.hex_bytes)) + "\n"
        # 0644 inside a 0700 directory: readable by the container's non-root user through the
        # bind mount, unreachable for other users of the host.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(value)
        path.chmod(0o644)
        written.append(secret.name)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when the committed file differs from a fresh render")
    parser.add_argument("--write-secrets", type=Path, metavar="DIR",
                        help="write missing local secret files into DIR instead of rendering")
    parser.add_argument("--force", action="store_true", help="with --write-secrets: rotate all")
    args = parser.parse_args(argv)
    model = topology.build()
    if args.write_secrets is not None:
        try:
            names = write_secret_files(model, args.write_secrets, force=args.force)
        except PartialTlsError as exc:
            print(f"make secrets: {exc}", file=sys.stderr)
            return 2
        kept = len(model.secrets) - len(names)
        print(f"wrote {len(names)} secret file(s) to {args.write_secrets}, kept {kept}")
        return 0
    return settle(args.output, render(model), check=args.check, target="render-compose")


if __name__ == "__main__":
    raise SystemExit(main())
