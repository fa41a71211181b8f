"""MySQL on 127.0.0.1:3307 and Redis on 127.0.0.1:6380 answer the host, and nothing else."""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

import pymysql
import pytest
import redis

from infra.topology import HOST_ACCESS
from tests.e2e.containers.compose_stack import IMAGES, Stack, network_name, sh

pytestmark = pytest.mark.timeout(600)

STORES = ("mysql-payment", "redis-payment")
# One TCP connect per "host:port" argument, reported as JSON: "connected" or the error.
PROBE = """
import json, socket, sys
out = {}
for target in sys.argv[1:]:
    host, port = target.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
        out[target] = "connected"
    except OSError as error:
        out[target] = f"{type(error).__name__}: {error}"
print(json.dumps(out))
"""


def probe_from_nilecare(*docker_args: str, targets: list[str]) -> dict[str, str]:
    """Run PROBE with the service image's python: `docker exec NAME` or a throwaway `docker run`."""
    result = sh("docker", *docker_args, "python3", "-c", PROBE, *targets, timeout=120)
    found: dict[str, str] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


def connects_from(container: str, ip: str, port: int) -> tuple[bool, str]:
    """A TCP connect from inside a MySQL/Redis container (bash, no python there)."""
    result = sh("docker", "exec", container, "timeout", "4", "bash", "-c",
                f"exec 3<>/dev/tcp/{ip}/{port}", check=False, timeout=60)
    outcome = "timed out" if result.returncode == 124 else result.stderr.strip()
    return result.returncode == 0, outcome or "connected"


def test_mysql_answers_select_1_on_the_host_loopback(stack: Stack) -> None:
    connection = pymysql.connect(host="127.0.0.1", port=3307, user="payments",
                                 password=stack.secret("database_password"),
                                 database="nilecare_payments", connect_timeout=10)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            assert cursor.fetchone() == (1,)
    finally:
        connection.close()
    with pytest.raises(pymysql.err.OperationalError) as refused:
        pymysql.connect(host="127.0.0.1", port=3307, user="payments",
                        password="not-the-password", connect_timeout=10)
    assert refused.value.args[0] == 1045  # access denied: the server checks, not a dead port


def test_redis_answers_ping_with_the_password_and_refuses_without(stack: Stack) -> None:
    client = redis.Redis(host="127.0.0.1", port=6380, password=stack.secret("redis_password"),
                         socket_timeout=5)
    try:
        assert client.ping() is True
    finally:
        client.close()
    for password in (None, "not-the-password"):
        anonymous = redis.Redis(host="127.0.0.1", port=6380, password=password, socket_timeout=5)
        try:
            with pytest.raises(redis.exceptions.AuthenticationError):
                anonymous.ping()
        finally:
            anonymous.close()


@pytest.mark.parametrize(("name", "port"), [("mysql-payment", "3306"),
                                            ("redis-payment", "6379")])
def test_published_on_loopback_only(stack: Stack, name: str, port: str) -> None:
    settings = stack.inspect(name)["NetworkSettings"]
    assert isinstance(settings, dict)
    bindings = settings["Ports"][f"{port}/tcp"]
    assert [b["HostIp"] for b in bindings] == ["127.0.0.1"]
    assert set(stack.networks(name)) == {"backend", HOST_ACCESS}


def test_the_host_access_network_holds_the_two_stores_without_nat_or_icc(stack: Stack) -> None:
    out = sh("docker", "network", "inspect", network_name(HOST_ACCESS), quiet=True).stdout
    network: dict[str, Any] = json.loads(out)[0]
    assert network["Internal"] is False
    assert network["Options"]["com.docker.network.bridge.enable_ip_masquerade"] == "false"
    assert network["Options"]["com.docker.network.bridge.enable_icc"] == "false"
    members = {c["Name"] for c in network["Containers"].values()}
    assert members == set(STORES)


def test_dockerd_programmed_no_masquerade_for_the_host_access_subnet(stack: Stack) -> None:
    """No NAT means a packet from MySQL or Redis can leave the host only under an address no
    one routes back: this is the one part of "no way out" that a probe cannot show without
    sending traffic off the machine, so read the rules dockerd wrote instead."""
    if shutil.which("iptables") is None or os.geteuid() != 0:
        pytest.skip("reading dockerd's NAT rules needs root and iptables")

    def subnet(name: str) -> str:
        out = sh("docker", "network", "inspect", network_name(name), quiet=True).stdout
        return str(json.loads(out)[0]["IPAM"]["Config"][0]["Subnet"])

    rules = sh("iptables", "-t", "nat", "-S", "POSTROUTING", quiet=True).stdout.splitlines()
    masqueraded = [r for r in rules if r.endswith("-j MASQUERADE")]
    assert any(f"-s {subnet('frontend')} " in r for r in masqueraded), rules
    assert not any(f"-s {subnet(HOST_ACCESS)} " in r for r in masqueraded), rules


def test_a_container_off_the_backend_cannot_reach_mysql_or_redis(stack: Stack) -> None:
    """The simulator sits on the frontend only: the stores' addresses on either of their
    networks are out of its reach, while the same probe reaches the gateway."""
    targets = [f"{net['ip']}:{port}"
               for name, port in (("mysql-payment", 3306), ("redis-payment", 6379))
               for net in stack.networks(name).values()]
    gateway = f"{stack.networks('payment-gateway-service')['frontend']['ip']}:7001"
    found = probe_from_nilecare("exec", "payment-provider-simulator",
                                targets=[gateway, "mysql-payment:3306", *targets])
    assert found[gateway] == "connected", found
    assert found["mysql-payment:3306"].startswith("gaierror"), found
    for target in targets:
        assert found[target] != "connected", found


def test_a_container_joining_host_access_cannot_reach_the_stores_through_it(stack: Stack) -> None:
    """ICC is off on host-access: even a container attached to it gets no connection."""
    targets = [f"{stack.networks(name)[HOST_ACCESS]['ip']}:{port}"
               for name, port in (("mysql-payment", 3306), ("redis-payment", 6379))]
    found = probe_from_nilecare("run", "--rm", "--network", network_name(HOST_ACCESS),
                                IMAGES["NILECARE_IMAGE"], targets=targets)
    for target in targets:
        assert found[target] != "connected", found


@pytest.mark.parametrize("name", STORES)
def test_the_stores_have_no_way_out(stack: Stack, name: str) -> None:
    """From inside MySQL or Redis: the backend works, but neither the host's side of the
    frontend (where the gateway's 7001 is published on every address) nor a frontend-only
    container can be reached."""
    peer, peer_port = ("redis-payment", 6379) if name == "mysql-payment" else ("mysql-payment",
                                                                              3306)
    ok, outcome = connects_from(name, stack.networks(peer)["backend"]["ip"], peer_port)
    assert ok, f"{name} cannot reach {peer} over the backend: {outcome}"
    frontend = stack.networks("payment-provider-simulator")["frontend"]
    for ip, port in ((frontend["gateway"], 7001), (frontend["ip"], 7002)):
        ok, outcome = connects_from(name, ip, port)
        assert not ok, f"{name} reached {ip}:{port}"
