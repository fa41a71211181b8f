"""The rendered swarm stack: drift, validation by Docker's own loaders, the swarm policies,
and parity with the compose file (the same services, images, commands, healthchecks,
secrets and environment names)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra import compose, swarm, topology
from infra.topology import STORES_NODE
from infra.topology.edge import edge
from service import tls
from tests.infra.pulumi_harness import REPO

STACK = REPO / "deploy" / "swarm"
EDGE = "payment-edge"


def load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((STACK / name).read_text(encoding="utf-8"))
    return loaded


def stack() -> dict[str, Any]:
    return load("stack.yml")


def services() -> dict[str, Any]:
    """Both files' services, as `docker stack deploy -c stack.yml -c simulator.yml` merges them."""
    return {**stack()["services"], **load("simulator.yml")["services"]}


def test_committed_files_are_the_fresh_render() -> None:
    assert swarm.main(["--check"]) == 0


def test_a_changed_file_is_a_new_config(tmp_path: Path) -> None:
    # Swarm configs cannot change: the name carries the content, so an edited rule file is
    # a new config the service update swaps in, not a failed deploy.
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "a.yml").write_text("groups: []\n")
    (tmp_path / "rules" / "tests").mkdir()
    (tmp_path / "rules" / "tests" / "t.yml").write_text("tests: []\n")
    service = topology.Service("p", topology.NILECARE_IMAGE, (), topology.Healthcheck(("NONE",)),
                               topology.Limits(1, 1), (),
                               files=(topology.FileMount("rules", "/etc/rules"),))
    first = swarm.configs(service, tmp_path, tmp_path / "deploy", {})
    (tmp_path / "rules" / "a.yml").write_text("groups: [{name: x, rules: []}]\n")
    second = swarm.configs(service, tmp_path, tmp_path / "deploy", {})
    assert [c.target for c in first] == ["/etc/rules/a.yml"]  # tests stay behind
    assert first[0].source == "../rules/a.yml"
    assert first[0].name != second[0].name


def test_config_names_leave_room_for_a_stack_name() -> None:
    # Swarm refuses a name past 64 characters of [a-zA-Z0-9-_.], `<stack>_` included.
    for name in stack()["configs"]:
        assert re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9-_.]*[a-zA-Z0-9]", name), name
        assert len(name) <= swarm.NAME_ROOM, name


def test_secrets_are_versioned_for_rotation() -> None:
    # A swarm secret cannot change: a rotation deploys the next SECRETS_VERSION.
    for name, spec in stack()["secrets"].items():
        assert spec["name"] == f"{topology.PROJECT}-{name}-v${{SECRETS_VERSION:-1}}"
        resolved = spec["name"].replace("${SECRETS_VERSION:-1}", "999")
        assert re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9-_.]{0,62}[a-zA-Z0-9]", resolved), resolved


def _validate(tool: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*tool, "-c" if tool[0].endswith("docker") else "-f", "stack.yml",
         "-c" if tool[0].endswith("docker") else "-f", "simulator.yml",
         *([] if tool[0].endswith("docker") else ["config", "-q"])],
        cwd=tmp_path / "deploy" / "swarm", capture_output=True, text=True, check=False,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path)},
    )


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The stack and the files its configs and secrets name, laid out as in the repository."""
    shutil.copytree(STACK, tmp_path / "deploy" / "swarm")
    for directory in ("monitoring", "alertmanager"):
        shutil.copytree(REPO / directory, tmp_path / directory)
    compose.write_secret_files(topology.build(), tmp_path / "secrets")
    return tmp_path


def test_docker_compose_validates_the_stack_format(checkout: Path) -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose is not installed: apt-get install -y docker-compose")
    result = _validate([binary], checkout)
    assert result.returncode == 0, result.stderr


def test_docker_stack_config_loads_both_files(checkout: Path) -> None:
    # Debian's docker.io 20.10 client has no `stack config`; a newer client checks the file
    # with the loader `docker stack deploy` itself uses.
    docker = shutil.which("docker", path="/usr/local/bin:/usr/bin:/bin")
    if docker is None:
        pytest.fail("docker is not installed: apt-get install -y docker.io")
    probe = subprocess.run([docker, "stack", "config", "--help"], capture_output=True,
                           text=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"{docker} has no `docker stack config` (Docker 20.10's client)")
    result = _validate([docker, "stack", "config"], checkout)
    assert result.returncode == 0, result.stderr
    merged = yaml.safe_load(result.stdout)
    assert set(merged["services"]) == set(services())
    assert merged["services"]["payment-gateway-service"]["deploy"]["replicas"] == 3


def test_the_same_services_images_and_commands_as_compose() -> None:
    composed = yaml.safe_load((REPO / "docker-compose.payment.yml").read_text(encoding="utf-8"))
    ours, theirs = services(), composed["services"]
    assert set(ours) - {EDGE} == set(theirs)
    for name, spec in theirs.items():
        mine = ours[name]
        for key in ("image", "command", "user", "read_only", "healthcheck"):
            if (name, key) != ("prometheus", "user"):  # root, to read the Docker socket
                assert mine.get(key) == spec.get(key), (name, key)
        # A swarm ignores the `tmpfs:` key: the same paths are tmpfs mounts.
        mounts = mine.get("volumes", [])
        tmpfs = [m["target"] for m in mounts if isinstance(m, dict) and m["type"] == "tmpfs"]
        assert "tmpfs" not in mine and tmpfs == spec.get("tmpfs", []), name
        assert set(mine.get("environment", {})) == set(spec.get("environment", {})), name
        assert mine.get("environment") == spec.get("environment"), name
        assert mine.get("secrets", []) == spec.get("secrets", []), name
        assert [m for m in mounts if isinstance(m, str)] == [
            v for v in spec.get("volumes", []) if not v.startswith("./")], name
        assert mine["networks"] == [n for n in spec["networks"] if n != topology.HOST_ACCESS]
        limits = mine["deploy"]["resources"]["limits"]
        assert limits["memory"] == spec["mem_limit"].upper(), name
        assert float(limits["cpus"]) == float(spec["cpus"]), name
    assert set(stack()["secrets"]) == set(composed["secrets"])
    assert set(stack()["volumes"]) == set(composed["volumes"])


def test_files_compose_mounts_are_configs_with_the_same_targets() -> None:
    composed = yaml.safe_load((REPO / "docker-compose.payment.yml").read_text(encoding="utf-8"))
    declared = stack()["configs"]
    for name, spec in composed["services"].items():
        mounts = [v.split(":") for v in spec.get("volumes", []) if v.startswith("./")]
        targets = {c["target"] for c in services()[name].get("configs", [])}
        for source, target, _ in mounts:
            inside = [t for t in targets if t == target or t.startswith(target + "/")]
            assert inside, (name, source)
        for config in services()[name].get("configs", []):
            path = (STACK / declared[config["source"]]["file"]).resolve()
            assert path.is_file() and REPO in path.parents, config


def test_prometheus_discovers_the_tasks_from_a_managers_docker_api() -> None:
    prometheus = services()["prometheus"]
    assert prometheus["deploy"]["placement"]["constraints"][1] == "node.role == manager"
    binds = [v for v in prometheus["volumes"] if isinstance(v, dict) and v["type"] == "bind"]
    assert binds == [{"type": "bind", "source": "/var/run/docker.sock",
                      "target": "/var/run/docker.sock", "read_only": True}]
    main = next(c for c in prometheus["configs"] if c["target"].endswith("/prometheus.yml"))
    assert stack()["configs"][main["source"]]["file"] == "../../monitoring/prometheus.swarm.yml"
    config = yaml.safe_load((REPO / "monitoring/prometheus.swarm.yml").read_text())
    assert all(job["dockerswarm_sd_configs"][0]["role"] == "tasks"
               for job in config["scrape_configs"])
    # What the relabelling keeps by: the services' and networks' labels.
    assert all(s["deploy"]["labels"] == {"com.nilecare.service": name}
               for name, s in services().items())
    assert all(n["labels"] == {"com.nilecare.network": name}
               for name, n in stack()["networks"].items())


def test_only_the_edge_publishes_a_port_in_host_mode() -> None:
    published = {name: spec["ports"] for name, spec in services().items() if spec.get("ports")}
    assert list(published) == [EDGE]
    assert published[EDGE] == [{"target": 7001, "published": 7001, "protocol": "tcp",
                                "mode": "host"}]
    # No virtual IPs either: they need IPVS, as the routing mesh does.
    assert {spec["deploy"]["endpoint_mode"] for spec in services().values()} == {"dnsrr"}


def test_services_owning_a_volume_or_port_are_pinned_and_stopped_before_their_successor() -> None:
    for name, spec in services().items():
        deploy = spec["deploy"]
        constraints = deploy.get("placement", {}).get("constraints", [])
        if any(isinstance(v, str) for v in spec.get("volumes", [])) or spec.get("ports"):
            assert constraints[0].startswith("node.labels.nilecare."), name
            assert constraints[0].endswith(" == true"), name
            assert deploy["replicas"] == 1, name
        if constraints:
            assert deploy["update_config"]["order"] == "stop-first", name
        else:
            assert deploy["update_config"]["order"] == "start-first", name
        assert deploy["update_config"]["failure_action"] == "rollback", name
        assert deploy["restart_policy"]["condition"] == "any", name
    for name in ("mysql-payment", "redis-payment", "payment-reconciliation-worker"):
        constraint = services()[name]["deploy"]["placement"]["constraints"][0]
        assert constraint == f"node.labels.{STORES_NODE} == true"


def test_gateway_and_worker_replicas_are_stack_variables() -> None:
    assert services()["payment-gateway-service"]["deploy"]["replicas"] == "${GATEWAY_REPLICAS:-3}"
    assert services()["payment-worker"]["deploy"]["replicas"] == "${WORKER_REPLICAS:-2}"


def test_overlays_are_encrypted_unless_rendered_for_a_kernel_without_esp(tmp_path: Path) -> None:
    networks = stack()["networks"]
    assert set(networks) == {"frontend", "backend"}
    assert networks["backend"]["internal"] is True
    assert all(n["driver"] == "overlay" and "encrypted" in n["driver_opts"]
               for n in networks.values())
    assert swarm.main(["--plain-overlay", "--output", str(tmp_path)]) == 0
    plain = yaml.safe_load((tmp_path / "stack.yml").read_text(encoding="utf-8"))
    assert all("driver_opts" not in n for n in plain["networks"].values())


def test_haproxy_accepts_the_edge_configuration(tmp_path: Path) -> None:
    haproxy = shutil.which("haproxy", path="/usr/sbin:/usr/bin:/sbin:/bin")
    if haproxy is None:
        pytest.fail("haproxy is not installed: apt-get install -y haproxy")
    # The swarm's secret mounts, here in a directory: a development pair, the certificate's
    # key beside it as `<crt>.key`, which HAProxy must find and match to the certificate.
    pair = tls.development_pair()
    for mount in edge().secrets:
        (tmp_path / Path(mount.target).name).write_text(pair.files()[mount.secret])
    text = (STACK / "haproxy.cfg").read_text(encoding="utf-8")
    config = tmp_path / "haproxy.cfg"
    config.write_text(text.replace("/run/secrets/", f"{tmp_path}/"))
    result = subprocess.run([haproxy, "-c", "-f", str(config)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    # A key that is not the certificate's is refused.
    (tmp_path / "gateway.pem.key").write_text(tls.development_pair().key)
    refused = subprocess.run([haproxy, "-c", "-f", str(config)],
                             capture_output=True, text=True, check=False)
    assert refused.returncode != 0
    # The replicas are called over HTTPS, and what they present is checked.
    assert ("tasks.payment-gateway-service:7001 check ssl verify required ca-file "
            "/run/secrets/gateway_tls_ca verifyhost payment-gateway-service") in text
    assert "verify none" not in text
