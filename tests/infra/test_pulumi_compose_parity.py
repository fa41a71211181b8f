"""Pulumi (dev stack) and the committed compose file declare the same system."""

from __future__ import annotations

from typing import Any

import yaml

from infra import topology
from tests.infra.pulumi_harness import REPO, StackRun


def compose() -> dict[str, Any]:
    text = (REPO / "docker-compose.payment.yml").read_text(encoding="utf-8")
    document: dict[str, Any] = yaml.safe_load(text)
    return document


def compose_ports(service: dict[str, Any]) -> set[tuple[str, int, int]]:
    found = set()
    for entry in service.get("ports", []):
        parts = entry.split(":")
        ip = parts[0] if len(parts) == 3 else "0.0.0.0"
        found.add((ip, int(parts[-2]), int(parts[-1])))
    return found


def test_same_services(dev: StackRun) -> None:
    assert set(compose()["services"]) == set(dev.containers())


def test_same_ports_healthchecks_and_environment_names(dev: StackRun) -> None:
    services = compose()["services"]
    for name, container in dev.containers().items():
        spec = services[name]
        pulumi_ports = {(p["ip"], int(p["external"]), int(p["internal"]))
                        for p in container.inputs.get("ports", [])}
        assert compose_ports(spec) == pulumi_ports, name
        # Compose escapes the container's own $ as $$.
        compose_test = [part.replace("$$", "$") for part in spec["healthcheck"]["test"]]
        assert compose_test == container.inputs["healthcheck"]["tests"], name
        assert spec["healthcheck"]["interval"] == container.inputs["healthcheck"]["interval"]
        assert spec["healthcheck"]["retries"] == int(container.inputs["healthcheck"]["retries"])
        pulumi_env = {e.partition("=")[0] for e in container.inputs.get("envs", [])}
        assert set(spec.get("environment", {})) == pulumi_env, name
        assert spec["restart"] == container.inputs["restart"]
        assert spec.get("user") == container.inputs.get("user"), name
        compose_secrets = {s["target"] for s in spec.get("secrets", [])}
        uploads = container.inputs.get("uploads") or []
        if isinstance(uploads, dict):  # secret-wrapped by the engine
            uploads = uploads["value"]
        pulumi_secrets = {u["file"] for u in uploads if "content" in u}
        assert compose_secrets == pulumi_secrets, name


def test_same_networks_and_volumes(dev: StackRun) -> None:
    document = compose()
    for name, container in dev.containers().items():
        pulumi_nets = {n["name"].removeprefix("nilecare-")
                       for n in container.inputs["networksAdvanced"]}
        assert set(document["services"][name]["networks"]) == pulumi_nets, name
    assert document["networks"]["backend"]["internal"] is True
    pulumi_networks = {r.inputs["name"].removeprefix("nilecare-"): r.inputs
                       for r in dev.of_type("docker:index/network:Network")}
    assert set(document["networks"]) == set(pulumi_networks)
    for name, network in document["networks"].items():
        assert network["internal"] == pulumi_networks[name]["internal"], name
        assert network.get("driver_opts", {}) == pulumi_networks[name].get("options", {}), name
    pulumi_volumes = {r.inputs["name"].removeprefix("nilecare-")
                      for r in dev.of_type("docker:index/volume:Volume")
                      if "-secrets" not in r.inputs["name"]}
    assert set(document["volumes"]) == pulumi_volumes


def test_compose_images_are_the_pulumi_defaults_behind_an_override_variable() -> None:
    services = compose()["services"]
    model = topology.build()
    for service in model.services:
        image = services[service.name]["image"]
        assert image == f"${{{service.image.variable}:-{service.image.default}}}"
