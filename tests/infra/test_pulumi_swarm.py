"""The Pulumi program in swarm mode, under mocks: the same services as deploy/swarm/stack.yml,
with the same images, arguments, environment, healthchecks, secrets, configs, replicas and
update, rollback and placement policies, against the swarm manager at dockerHost."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from infra import topology
from tests.infra.pulumi_harness import REPO, StackRun, operator_secrets, run_stack
from tests.infra.test_pulumi_stacks import unwrap

SWARM = {"nilecare:mode": "swarm", "nilecare:dockerHost": "ssh://deploy@manager"}


@pytest.fixture(scope="module")
def swarm() -> StackRun:
    # The dev stack logs at DEBUG; the stack file carries the model's default.
    return run_stack("dev", {**SWARM, "nilecare:logLevel": "INFO"})


def stack_services() -> dict[str, Any]:
    def load(name: str) -> dict[str, Any]:
        document: dict[str, Any] = yaml.safe_load(
            (REPO / "deploy" / "swarm" / name).read_text(encoding="utf-8"))
        services: dict[str, Any] = document["services"]
        return services
    return {**load("stack.yml"), **load("simulator.yml")}


def _default(reference: str) -> str:
    """`${NILECARE_IMAGE:-nilecare-payments:latest}` → its default."""
    return reference.split(":-", 1)[1].rstrip("}")


def _seconds(value: str) -> int:
    return int(value.removesuffix("s"))


def test_the_same_services_as_the_stack_file_and_no_containers(swarm: StackRun) -> None:
    assert set(swarm.services()) == set(stack_services())
    assert swarm.of_type("docker:index/container:Container") == []
    assert all(r.provider and "docker-host" in r.provider for r in swarm.resources
               if r.typ.startswith("docker:index/"))


def test_each_service_matches_its_stack_file_entry(swarm: StackRun) -> None:
    for name, spec in stack_services().items():
        inputs = swarm.services()[name].inputs
        task = inputs["taskSpec"]
        container = task["containerSpec"]
        assert container["image"] == _default(spec["image"]), name
        # The stack file escapes the container's own $ as $$.
        command = [p.replace("$$", "$") for p in spec.get("command", [])] or None
        assert container.get("args") == command, name
        environment = {k: v.replace("$$", "$") for k, v in spec.get("environment", {}).items()}
        assert container.get("env", {}) == environment, name
        assert container.get("user") == spec.get("user"), name
        assert bool(container.get("readOnly")) == bool(spec.get("read_only")), name
        health = container["healthcheck"]
        assert health["tests"] == [p.replace("$$", "$") for p in spec["healthcheck"]["test"]]
        assert health["interval"] == spec["healthcheck"]["interval"], name
        assert int(health["retries"]) == spec["healthcheck"]["retries"], name
        assert _seconds(health["startPeriod"]) == _seconds(spec["healthcheck"]["start_period"])
        assert ({s["fileName"] for s in container.get("secrets", [])}
                == {s["target"] for s in spec.get("secrets", [])}), name
        assert ({c["fileName"] for c in container.get("configs", [])}
                == {c["target"] for c in spec.get("configs", [])}), name
        mounts = {(m["type"], m["target"]) for m in container.get("mounts", [])}
        wanted = {("volume", v.split(":")[1]) if isinstance(v, str) else (v["type"], v["target"])
                  for v in spec.get("volumes", [])}
        assert mounts == wanted, name
        deploy = spec["deploy"]
        replicas = deploy["replicas"]
        expected = int(_default(replicas)) if isinstance(replicas, str) else replicas
        assert int(inputs["mode"]["replicated"]["replicas"]) == expected, name
        for key in ("updateConfig", "rollbackConfig"):
            policy = deploy["update_config" if key == "updateConfig" else "rollback_config"]
            assert inputs[key]["order"] == policy["order"], name
            assert inputs[key]["failureAction"] == policy["failure_action"], name
            assert inputs[key]["monitor"] == policy["monitor"], name
        assert task["restartPolicy"]["condition"] == deploy["restart_policy"]["condition"]
        constraints = deploy.get("placement", {}).get("constraints", [])
        assert task.get("placement", {}).get("constraints", []) == constraints, name
        assert inputs["endpointSpec"]["mode"] == deploy["endpoint_mode"] == "dnsrr"
        limits = task["resources"]["limits"]
        assert int(limits["memoryBytes"]) == int(
            deploy["resources"]["limits"]["memory"].removesuffix("M")) * 1024 * 1024, name
        assert int(limits["nanoCpus"]) == int(float(deploy["resources"]["limits"]["cpus"]) * 1e9)
        ports = [(int(p["targetPort"]), int(p["publishedPort"]), p["publishMode"])
                 for p in inputs["endpointSpec"].get("ports", [])]
        assert ports == [(p["target"], p["published"], p["mode"]) for p in spec.get("ports", [])]


def test_secrets_and_configs_are_swarm_objects_with_secret_data(swarm: StackRun) -> None:
    secrets = swarm.of_type("docker:index/secret:Secret")
    assert {next(label["value"] for label in s.inputs["labels"]) for s in secrets} == {
        s.name for s in topology.SECRETS}
    assert all(unwrap(s.inputs["data"]) is not s.inputs["data"] for s in secrets)
    configs = swarm.of_type("docker:index/serviceConfig:ServiceConfig")
    files = {next(label["value"] for label in c.inputs["labels"]) for c in configs}
    assert {"monitoring/prometheus.swarm.yml", "deploy/swarm/haproxy.cfg",
            "alertmanager/alertmanager.yml"} <= files
    assert not any("/tests/" in f for f in files)
    # Mounted by id, so a changed file (a new config) rolls the service onto it.
    gateway_secrets = swarm.services()["payment-gateway-service"].inputs["taskSpec"][
        "containerSpec"]["secrets"]
    assert all(s["secretId"].startswith("objects-secret-") for s in gateway_secrets)


def test_overlay_networks_encrypted_unless_the_stack_says_plain(swarm: StackRun) -> None:
    networks = {r.inputs["name"]: r.inputs for r in swarm.of_type("docker:index/network:Network")}
    assert set(networks) == {"nilecare-frontend", "nilecare-backend"}
    assert all(n["driver"] == "overlay" and n["attachable"] for n in networks.values())
    assert all("encrypted" in n["options"] for n in networks.values())
    assert networks["nilecare-backend"]["internal"] is True
    plain = run_stack("dev", {**SWARM, "nilecare:plainOverlay": "true"})
    assert all(not r.inputs.get("options") for r in plain.of_type("docker:index/network:Network"))


def test_replicas_come_from_the_stack_config() -> None:
    run = run_stack("dev", {**SWARM, "nilecare:gatewayReplicas": "5",
                            "nilecare:workerReplicas": "4"})
    replicas = {name: int(s.inputs["mode"]["replicated"]["replicas"])
                for name, s in run.services().items()}
    assert replicas["payment-gateway-service"] == 5
    assert replicas["payment-worker"] == 4
    assert replicas["mysql-payment"] == 1


def test_prod_in_swarm_mode_follows_its_profiles_and_sizing() -> None:
    secrets = operator_secrets()
    run = run_stack("prod", {**SWARM, **secrets}, list(secrets))
    services = run.services()
    assert "payment-provider-simulator" not in services
    assert "payment-edge" in services
    mysql = services["mysql-payment"].inputs["taskSpec"]
    assert int(mysql["resources"]["limits"]["memoryBytes"]) == 4096 * 1024 * 1024
    assert "--innodb-buffer-pool-size=2048M" in mysql["containerSpec"]["args"]


@pytest.mark.parametrize(("key", "value"), [("mode", "kubernetes"),
                                            ("gatewayReplicas", "0"),
                                            ("workerReplicas", "two")])
def test_a_bad_swarm_setting_stops_the_program(key: str, value: str) -> None:
    with pytest.raises(Exception, match=f"nilecare:{key}"):
        run_stack("dev", {**SWARM, f"nilecare:{key}": value})


def test_config_names_fit_swarm_with_a_prefix() -> None:
    # Swarm refuses a config name past 64 characters of [a-zA-Z0-9-_.].
    run = run_stack("dev", {**SWARM, "nilecare:namePrefix": "hospital-b-"})
    names = [c.inputs["name"] for c in run.of_type("docker:index/serviceConfig:ServiceConfig")]
    assert len(names) >= 15
    for name in names:
        assert name.startswith("hospital-b-nilecare-"), name
        assert re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9-_.]{0,62}[a-zA-Z0-9]", name), name


def test_host_mode_ignores_the_swarm_keys() -> None:
    run = run_stack("dev", {"nilecare:gatewayReplicas": "5", "nilecare:plainOverlay": "true"})
    assert run.services() == {}
    assert set(run.containers()) >= set(topology.CORE_SERVICES)
    assert {r.inputs["driver"] for r in run.of_type("docker:index/network:Network")} == {
        "bridge"}
