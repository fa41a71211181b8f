"""The compose file works: six healthy containers, checked from inside, crash and restart drills."""

from __future__ import annotations

import os
import time
from typing import Any

import httpx
import pytest
import testinfra

from service import tls
from tests.e2e.containers.compose_stack import SIX, Stack, sh
from tests.tlsprobe import der, plain_http_answer, presented

pytestmark = pytest.mark.timeout(1500)

GATEWAY = "https://127.0.0.1:7001"
NILECARE_PROCESSES = ("payment-gateway-service", "payment-worker",
                      "payment-reconciliation-worker", "payment-metrics-exporter")
PAYMENT = {"provider": "zain_cash", "amount": "150.00", "currency": "SDG",
           "facility_id": "fac-1", "patient_id": "p-1", "payer_phone": "+249912345678"}
state: dict[str, Any] = {}


def host(name: str) -> Any:
    return testinfra.get_host(f"docker://{name}")


def listening_ports(h: Any) -> set[int]:
    """TCP ports in LISTEN state, from /proc (the images carry neither ss nor netstat)."""
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in h.file(table).content_string.splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def uid_of_pid1(h: Any) -> int:
    status = h.file("/proc/1/status").content_string
    uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
    return int(uid_line.split()[1])


def test_all_six_are_healthy(stack: Stack) -> None:
    for name in SIX:
        assert stack.health(name) == "healthy", name


@pytest.mark.parametrize("name", SIX)
def test_main_process_runs_as_non_root(stack: Stack, name: str) -> None:
    assert uid_of_pid1(host(name)) != 0


@pytest.mark.parametrize(("name", "port"), [
    ("payment-gateway-service", 7001), ("mysql-payment", 3306), ("redis-payment", 6379),
    ("payment-metrics-exporter", 9101),
])
def test_ports_listen(stack: Stack, name: str, port: int) -> None:
    assert port in listening_ports(host(name))


def test_loopback_ports_answer_on_the_host(stack: Stack) -> None:
    assert httpx.get(f"{GATEWAY}/health", timeout=5,
                     verify=stack.trust).json() == {"status": "ok"}
    assert httpx.get("http://127.0.0.1:9101/health", timeout=5).status_code == 200


def test_the_published_port_serves_https_with_the_stack_certificate(stack: Stack) -> None:
    """On the host's every address, as published: the certificate of the stack's secret,
    checked against its CA, and no answer at all to plain HTTP."""
    configured = der(stack.workdir / "secrets" / tls.CERT_SECRET)
    assert presented(7001, stack.trust, tls.INTERNAL_NAME) == configured
    received = plain_http_answer(7001)
    assert not received.startswith(b"HTTP/"), received[:200]
    with pytest.raises(httpx.HTTPError):
        httpx.get("http://127.0.0.1:7001/health", timeout=5)


def _gateway_counter(stack: Stack, name: str) -> float:
    """A counter summed over its labels, from the gateway's /metrics over HTTPS."""
    text = httpx.get(f"{GATEWAY}/metrics", timeout=5, verify=stack.trust).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{"))


@pytest.mark.parametrize("name", (*NILECARE_PROCESSES, "mysql-payment", "redis-payment"))
def test_secrets_are_files_and_absent_from_the_environment(stack: Stack, name: str) -> None:
    h = host(name)
    secret = "redis_password" if name == "redis-payment" else "database_password"
    mounted = h.file(f"/run/secrets/{secret}")
    assert mounted.is_file
    assert mounted.content_string.strip() == stack.secret(secret)
    # What the container was given, and what its main process holds now: a server that
    # changed uid (mysqld) is not dumpable, so its /proc environ is closed even to root.
    config = stack.inspect(name)["Config"]
    assert isinstance(config, dict)
    environ = list(config["Env"])
    process = h.run("cat /proc/1/environ")
    if process.rc == 0:
        environ += process.stdout.split("\0")
    elif name not in ("mysql-payment",):
        pytest.fail(f"cannot read {name}'s process environment: {process.stderr}")
    names = {entry.partition("=")[0] for entry in environ}
    values = [stack.secret(s) for s in ("database_password", "redis_password", "jwt_secret",
                                        "encryption_key", "webhook_secret")]
    assert not {"DATABASE_PASSWORD", "REDIS_PASSWORD", "JWT_SECRET", "ENCRYPTION_KEY",
                "WEBHOOK_SECRET", "MYSQL_PASSWORD", "MYSQL_ROOT_PASSWORD"} & names
    assert not any(v in entry for v in values for entry in environ)


def test_redis_reports_1gb_maxmemory_and_lru_behind_a_password(stack: Stack) -> None:
    h = host("redis-payment")
    auth = 'REDISCLI_AUTH="$(cat /run/secrets/redis_password)"'
    assert "NOAUTH" in h.run("redis-cli ping").stdout + h.run("redis-cli ping").stderr
    out = h.check_output(f"{auth} redis-cli config get maxmemory")
    assert out.split() == ["maxmemory", str(1024**3)]
    policy = h.check_output(f"{auth} redis-cli config get maxmemory-policy")
    assert policy.split() == ["maxmemory-policy", "allkeys-lru"]


def test_mysql_holds_the_payments_database_for_the_payments_user(stack: Stack) -> None:
    h = host("mysql-payment")
    out = h.check_output(
        'MYSQL_PWD="$(cat /run/secrets/database_password)" mysql -h 127.0.0.1 -u payments '
        "-N -e 'SHOW TABLES' nilecare_payments"
    )
    assert "payments" in out.split()


def test_mysql_buffer_pool_is_half_its_container_memory(stack: Stack) -> None:
    # The server's default pool is 128 MB whatever the container holds.
    out = host("mysql-payment").check_output(
        'MYSQL_PWD="$(cat /run/secrets/database_password)" mysql -h 127.0.0.1 -u payments '
        "-N -e 'SELECT @@innodb_buffer_pool_size' nilecare_payments"
    )
    host_config = stack.inspect("mysql-payment")["HostConfig"]
    assert isinstance(host_config, dict)
    assert int(out.strip()) == host_config["Memory"] // 2


def _token(stack: Stack) -> str:
    result = sh("docker", "exec", "payment-gateway-service", "nilecare", "token",
                "--role", "accountant", "--facility", "fac-1")
    return str(result.stdout).strip()


def test_a_payment_is_created_and_the_worker_settles_it(stack: Stack) -> None:
    headers = {"Authorization": f"Bearer {_token(stack)}", "Idempotency-Key": "e2e-payment-1"}
    created = httpx.post(f"{GATEWAY}/api/v1/payments", json=PAYMENT, headers=headers, timeout=15,
                         verify=stack.trust)
    assert created.status_code in (200, 201), created.text
    payment_id = created.json()["id"]
    state["payment_id"] = payment_id
    state["token"] = headers["Authorization"]
    deadline = time.monotonic() + 120
    status = None
    while time.monotonic() < deadline:
        got = httpx.get(f"{GATEWAY}/api/v1/payments/{payment_id}", verify=stack.trust,
                        headers={"Authorization": headers["Authorization"]}, timeout=10)
        assert got.status_code == 200, got.text
        status = got.json()["status"]
        if status == "confirmed":
            # The simulator's webhook reached the gateway over HTTPS, by its name on the
            # frontend network, its certificate checked against the CA.
            # (It may come a moment after the worker's poll confirmed the payment.)
            heard = time.monotonic() + 30
            while _gateway_counter(stack, "nilecare_webhooks_received_total") < 1:
                assert time.monotonic() < heard, "no webhook reached the gateway"
                time.sleep(1)
            return
        time.sleep(3)
    pytest.fail(f"payment {payment_id} still {status!r} after 120 s")


def test_a_killed_gateway_is_restarted_and_healthy_again(stack: Stack) -> None:
    before = stack.inspect("payment-gateway-service")
    assert isinstance(before["State"], dict) and isinstance(before["RestartCount"], int)
    pid = before["State"]["Pid"]
    # SIGKILL from the host: a crash, not a `docker stop`, so the restart policy applies.
    os.kill(int(pid), 9)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        after = stack.inspect("payment-gateway-service")
        restarts = after["RestartCount"]
        assert isinstance(restarts, int)
        if restarts > before["RestartCount"]:
            break
        time.sleep(1)
    else:
        pytest.fail("the gateway was not restarted within 60 s")
    stack.wait_healthy(("payment-gateway-service",), within_s=120)
    assert httpx.get(f"{GATEWAY}/health", timeout=5, verify=stack.trust).status_code == 200


def test_down_then_up_keeps_the_payment(stack: Stack) -> None:
    if "payment_id" not in state:
        pytest.skip("no payment was created (see the payment step)")
    stack.compose("down")  # volumes stay
    stack.compose("up", "-d")
    stack.wait_healthy(SIX)
    got = httpx.get(f"{GATEWAY}/api/v1/payments/{state['payment_id']}",
                    headers={"Authorization": state["token"]}, timeout=10, verify=stack.trust)
    assert got.status_code == 200, got.text
    assert got.json()["id"] == state["payment_id"]
