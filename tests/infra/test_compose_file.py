"""The rendered compose file: drift, docker-compose 1.29 validation, and the local secret files."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from infra import compose, topology
from infra.generated import header
from infra.monitoring.render import SPEC_PATH
from infra.monitoring.spec import load
from service import tls
from tests.infra.pulumi_harness import REPO

COMPOSE_FILE = REPO / "docker-compose.payment.yml"


def document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return loaded


def test_committed_file_is_the_fresh_render() -> None:
    assert COMPOSE_FILE.read_text(encoding="utf-8") == compose.render(topology.build()), (
        "docker-compose.payment.yml drifted from infra/topology/: run `make render-compose`"
    )
    assert compose.main(["--check", "--output", str(COMPOSE_FILE)]) == 0


def test_check_mode_fails_on_a_hand_edit(tmp_path: Path) -> None:
    edited = tmp_path / "compose.yml"
    edited.write_text(COMPOSE_FILE.read_text(encoding="utf-8").replace("1gb", "2gb"))
    assert compose.main(["--check", "--output", str(edited)]) == 1


def test_render_is_deterministic_and_carries_the_generated_header() -> None:
    first = compose.render(topology.build())
    assert first == compose.render(topology.build())
    assert first.splitlines()[0] == "# " + header("infra/topology/ (infra/compose.py)")


def test_refuses_an_empty_topology() -> None:
    empty = topology.Topology(services=(), networks=(), volumes=(), secrets=())
    with pytest.raises(ValueError, match="no services"):
        compose.render(empty)


def test_file_speaks_what_docker_compose_1_29_and_v2_both_accept() -> None:
    doc = document()
    assert doc["version"] == "3.9"  # 1.29 wants it; v2 ignores it
    for name, service in doc["services"].items():
        # mem_limit/cpus work in both; deploy.resources only in v2 (or 1.29 --compatibility).
        assert "deploy" not in service, name
        assert "mem_limit" in service and "cpus" in service, name
        for dependency in service.get("depends_on", {}).values():
            assert dependency == {"condition": "service_healthy"}
    for secret in doc["secrets"].values():
        assert set(secret) == {"file"}  # file secrets: no swarm needed
    for name, network in doc["networks"].items():
        # Keys both 1.29's bundled compose_spec.json and Compose v2's schema define; Docker takes
        # driver options as strings, so they are quoted (YAML would read a bare false as bool).
        assert set(network) <= {"driver", "internal", "driver_opts"}, name
        assert all(isinstance(v, str) for v in network.get("driver_opts", {}).values()), name


def test_every_image_is_overridable() -> None:
    for name, service in document()["services"].items():
        assert service["image"].startswith("${") and ":-" in service["image"], name


def test_mysql_and_redis_reach_the_host_only_through_host_access() -> None:
    doc = document()
    assert doc["networks"]["backend"]["internal"] is True
    assert doc["networks"]["frontend"]["internal"] is False
    # Docker binds no published port of a container that is only on internal networks; this
    # bridge makes 3307/6380 work without NAT out or traffic between its members.
    assert doc["networks"][topology.HOST_ACCESS] == {
        "driver": "bridge",
        "internal": False,
        "driver_opts": {"com.docker.network.bridge.enable_icc": "false",
                        "com.docker.network.bridge.enable_ip_masquerade": "false"},
    }
    on_host_access = {n for n, s in doc["services"].items()
                      if topology.HOST_ACCESS in s["networks"]}
    assert on_host_access == {"mysql-payment", "redis-payment"}
    assert doc["services"]["mysql-payment"]["networks"] == ["backend", topology.HOST_ACCESS]
    assert doc["services"]["redis-payment"]["networks"] == ["backend", topology.HOST_ACCESS]
    assert doc["services"]["mysql-payment"]["ports"] == ["127.0.0.1:3307:3306"]
    assert doc["services"]["redis-payment"]["ports"] == ["127.0.0.1:6380:6379"]
    assert doc["services"]["payment-metrics-exporter"]["ports"] == ["127.0.0.1:9101:9101"]


def test_unpublished_stores_get_no_host_access_network() -> None:
    model = topology.build(publish_backend_ports=False)
    assert topology.HOST_ACCESS not in {n.name for n in model.networks}
    for name in ("mysql-payment", "redis-payment"):
        assert model.service(name).networks == ("backend",)
        assert model.service(name).ports == ()
    text = compose.render(model)
    assert topology.HOST_ACCESS not in text and "driver_opts" not in text


def test_environment_names_are_ones_the_service_settings_read() -> None:
    from service.settings import Settings

    known = Settings.env_names()
    for name, service in document()["services"].items():
        if service["image"].startswith("${NILECARE_IMAGE"):
            unknown = set(service.get("environment", {})) - known
            assert not unknown, f"{name} sets variables Settings does not read: {unknown}"
            assert not set(service.get("environment", {})) & {
                s.name.upper() for s in topology.SECRETS
            }


def test_profiles_hold_the_helpers_and_leave_the_six_unprofiled() -> None:
    doc = document()
    unprofiled = {n for n, s in doc["services"].items() if "profiles" not in s}
    assert unprofiled == set(topology.CORE_SERVICES)
    monitoring = {n for n, s in doc["services"].items() if s.get("profiles") == ["monitoring"]}
    assert monitoring == {"prometheus", "alertmanager", "grafana"}


def _docker_compose() -> str:
    path = shutil.which("docker-compose")
    if path is None:
        pytest.fail("docker-compose is not installed: apt-get install -y docker-compose")
    return path


@pytest.mark.parametrize("profiles", [[], ["monitoring"], ["monitoring", "simulator"]])
def test_docker_compose_validates_the_file(tmp_path: Path, profiles: list[str]) -> None:
    binary = _docker_compose()
    shutil.copy(COMPOSE_FILE, tmp_path / COMPOSE_FILE.name)
    compose.write_secret_files(topology.build(), tmp_path / "secrets")
    flags = [arg for p in profiles for arg in ("--profile", p)]
    result = subprocess.run(
        [binary, "-f", COMPOSE_FILE.name, *flags, "config", "-q"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr


def test_docker_compose_rejects_a_broken_file(tmp_path: Path) -> None:
    binary = _docker_compose()
    broken = COMPOSE_FILE.read_text(encoding="utf-8").replace("condition: service_healthy",
                                                              "condition: when_ready")
    (tmp_path / "c.yml").write_text(broken)
    result = subprocess.run([binary, "-f", "c.yml", "config", "-q"], cwd=tmp_path,
                            capture_output=True, text=True, check=False)
    assert result.returncode != 0


def test_make_secrets_writes_hex_files_readable_through_a_private_directory(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "secrets"
    written = compose.write_secret_files(topology.build(), directory)
    assert set(written) == {s.name for s in topology.SECRETS}
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    key = (directory / "encryption_key").read_text().strip()
    assert len(key) == 64 and bytes.fromhex(key)
    webhook = (directory / "webhook_secret").read_text().strip()
    assert len(webhook) == 128 and bytes.fromhex(webhook)
    assert (directory / "slack_webhook_url").read_text().startswith("https://")
    # A second run keeps what exists (the MySQL volume knows the old password) unless forced.
    assert compose.write_secret_files(topology.build(), directory) == []
    rotated = compose.write_secret_files(topology.build(), directory, force=True)
    assert len(rotated) == len(topology.SECRETS)
    assert (directory / "encryption_key").read_text().strip() != key


def test_make_secrets_writes_a_development_tls_pair_that_loads_and_verifies(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "secrets"
    compose.write_secret_files(topology.build(), directory)
    files = {name: directory / name for name in (tls.CA_SECRET, tls.CERT_SECRET, tls.KEY_SECRET)}
    tls.check_pair(files[tls.CERT_SECRET], files[tls.KEY_SECRET])
    certificate = x509.load_pem_x509_certificate(files[tls.CERT_SECRET].read_bytes())
    ca = x509.load_pem_x509_certificate(files[tls.CA_SECRET].read_bytes())
    certificate.verify_directly_issued_by(ca)
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert tls.INTERNAL_NAME in names.get_values_for_type(x509.DNSName)


def test_make_secrets_never_puts_a_development_pair_beside_an_operators_files(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "secrets"
    directory.mkdir()
    operator = tls.development_pair()
    (directory / tls.CERT_SECRET).write_text(operator.cert)
    (directory / tls.KEY_SECRET).write_text(operator.key)
    with pytest.raises(compose.PartialTlsError, match=tls.CA_SECRET):
        compose.write_secret_files(topology.build(), directory)
    assert compose.main(["--write-secrets", str(directory)]) == 2
    assert (directory / tls.CERT_SECRET).read_text() == operator.cert
    # All three there: kept as they are.
    (directory / tls.CA_SECRET).write_text(operator.ca)
    written = compose.write_secret_files(topology.build(), directory)
    assert not set(written) & {tls.CA_SECRET, tls.CERT_SECRET, tls.KEY_SECRET}
    assert (directory / tls.KEY_SECRET).read_text() == operator.key


def test_prometheus_finds_the_gateway_ca_where_the_spec_points_it() -> None:
    spec = load(REPO / SPEC_PATH)
    prometheus = topology.build().service("prometheus")
    assert [m.target for m in prometheus.secrets] == [
        f"{spec.prometheus.secrets_dir}/{tls.CA_SECRET}"]


def test_start_order_puts_dependencies_first() -> None:
    order = [s.name for s in topology.build().start_order(("monitoring",))]
    assert order.index("mysql-payment") < order.index("payment-gateway-service")
    assert order.index("payment-gateway-service") < order.index("payment-worker")
    assert order.index("alertmanager") < order.index("prometheus") < order.index("grafana")
    with pytest.raises(ValueError, match="unknown profile"):
        topology.build().enabled(("nightly",))
