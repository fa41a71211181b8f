"""Runs the real infra/__main__.py under Pulumi mocks, once per stack, recording its resources."""

from __future__ import annotations

import hashlib
import json
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime.sync_await import _sync_await

REPO = Path(__file__).resolve().parents[2]
PROGRAM = REPO / "infra" / "__main__.py"


@dataclass
class Registered:
    typ: str
    name: str
    inputs: dict[str, Any]
    state: dict[str, Any]
    provider: str | None


@dataclass
class StackRun:
    stack: str
    resources: list[Registered] = field(default_factory=list)
    exports: dict[str, Any] = field(default_factory=dict)
    namespace: dict[str, Any] = field(default_factory=dict)

    def of_type(self, typ: str) -> list[Registered]:
        return [r for r in self.resources if r.typ == typ]

    def containers(self) -> dict[str, Registered]:
        """Containers by the service label (the topology's service name)."""
        found = {}
        for r in self.of_type("docker:index/container:Container"):
            labels = {label["label"]: label["value"] for label in r.inputs.get("labels", [])}
            found[labels["com.nilecare.service"]] = r
        return found

    def services(self) -> dict[str, Registered]:
        """Swarm services by the service label (the topology's service name)."""
        found = {}
        for r in self.of_type("docker:index/service:Service"):
            labels = {label["label"]: label["value"] for label in r.inputs.get("labels", [])}
            found[labels["com.nilecare.service"]] = r
        return found

    def resolve(self, output: Any) -> Any:
        return _sync_await(pulumi.Output.from_input(output).future())

    def is_secret(self, output: pulumi.Output[Any]) -> bool:
        return bool(_sync_await(output.is_secret()))


def fake_hex(seed: str, length: int) -> str:
    return hashlib.sha256(seed.encode()).hexdigest() * (length * 2 // 64 + 1)


class Mocks(pulumi.runtime.Mocks):
    """Returns what the providers compute (imageId, hex, names), in camelCase, like the engine."""

    def __init__(self, run: StackRun) -> None:
        self.run = run

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = dict(args.inputs)
        if args.typ == "docker:index/remoteImage:RemoteImage":
            state["imageId"] = "sha256:" + hashlib.sha256(args.inputs["name"].encode()).hexdigest()
            state["repoDigest"] = f"{args.inputs['name']}@{state['imageId']}"
        elif args.typ == "random:index/randomBytes:RandomBytes":
            length = int(args.inputs["length"])
            state["hex"] = fake_hex(args.name, length)[: length * 2]
            state["base64"] = "bW9jaw=="
        elif args.typ == "tls:index/privateKey:PrivateKey":
            state["privateKeyPem"] = f"-----BEGIN PRIVATE KEY-----\n{fake_hex(args.name, 32)}\n"
        elif args.typ in ("tls:index/selfSignedCert:SelfSignedCert",
                          "tls:index/locallySignedCert:LocallySignedCert"):
            state["certPem"] = f"-----BEGIN CERTIFICATE-----\n{fake_hex(args.name, 32)}\n"
        elif args.typ == "tls:index/certRequest:CertRequest":
            state["certRequestPem"] = f"-----BEGIN CERTIFICATE REQUEST-----\n{args.name}\n"
        elif args.typ == "docker:index/container:Container":
            state.setdefault("networkDatas", [])
        elif args.typ == "docker:index/volume:Volume":
            state["mountpoint"] = f"/var/lib/docker/volumes/{args.inputs['name']}/_data"
        self.run.resources.append(
            Registered(args.typ, args.name, dict(args.inputs), state, args.provider)
        )
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any]]:
        return {}, []


# Stand-in values an operator would set with `pulumi config set --secret` on prod.
def operator_secrets() -> dict[str, str]:
    from infra import topology
    from infra.stack_config import config_key

    return {
        f"nilecare:{config_key(s.name)}": fake_hex(f"operator-{s.name}", s.hex_bytes)[
            : s.hex_bytes * 2
        ]
        for s in topology.SECRETS
    }


def stack_config(stack: str) -> dict[str, str]:
    document = yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8"))
    values = document["config"]
    return {
        key: value if isinstance(value, str) else json.dumps(value)
        for key, value in values.items()
    }


def run_stack(stack: str, extra: dict[str, str] | None = None,
              secret_keys: list[str] | None = None) -> StackRun:
    run = StackRun(stack)
    pulumi.runtime.set_mocks(Mocks(run), project="nilecare", stack=stack, preview=False)
    pulumi.runtime.set_all_config({**stack_config(stack), **(extra or {})}, secret_keys or [])
    original_export = pulumi.export

    def record_export(name: str, value: Any) -> None:
        run.exports[name] = value
        original_export(name, value)

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> pulumi.Output[Any]:
        pulumi.export = record_export
        try:
            run.namespace = runpy.run_path(str(PROGRAM), run_name="__main__")
        finally:
            pulumi.export = original_export
        if "services" in run.namespace:  # swarm mode
            return pulumi.Output.all(*(s.service_id for s in run.namespace["services"].values()))
        containers = run.namespace["containers"]
        return pulumi.Output.all(*(c.container_id for c in containers.values()))

    program()
    return run
