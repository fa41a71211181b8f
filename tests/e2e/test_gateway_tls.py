"""The gateway's port as it is published beyond its host: HTTPS with the configured
certificate, nothing for plain HTTP, a clear refusal of a setup that would serve plain HTTP
there, and the callers that follow it (the healthcheck, the simulator's webhooks). Real
gateway and simulator processes on the embedded database."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service import tls
from tests.conftest import base_environ, random_key
from tests.e2e.test_idempotency_race import _start_gateway
from tests.integration.test_api import auth, body
from tests.servers import free_port
from tests.tlsprobe import der, plain_http_answer, presented

CLI = [sys.executable, "-m", "service.cli"]
# The `nilecare` console script's entry point, as a container's healthcheck runs it.
PROBE = "import sys; from service.healthprobe import main; sys.argv[0] = 'nilecare'; main()"


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return tls.write_pair(tls.development_pair(), tmp_path_factory.mktemp("tls"))


def _environment(data: Path, files: dict[str, Path], **extra: str) -> dict[str, str]:
    return base_environ(DATA_DIR=str(data), GATEWAY_HOST="0.0.0.0",
                        GATEWAY_TLS_CERT_FILE=str(files[tls.CERT_SECRET]),
                        GATEWAY_TLS_KEY_FILE=str(files[tls.KEY_SECRET]), **extra)


def _ready(port: int, context: ssl.SSLContext, process: subprocess.Popen[bytes],
           log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(f"https://127.0.0.1:{port}/health", verify=context,
                         timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError(f"the gateway never answered over HTTPS:\n{log.read_text()}")


@pytest.fixture(scope="module")
def gateway(material: dict[str, Path],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, dict[str, str]]]:
    """A gateway bound to every interface, as in its container, with the development pair;
    the simulator is started by the tests that need one."""
    work = tmp_path_factory.mktemp("gateway")
    sim_port = free_port()
    port = free_port()
    env = _environment(work, material, PROVIDER_SIMULATOR_URL=f"http://127.0.0.1:{sim_port}",
                       GATEWAY_PUBLIC_URL=f"https://127.0.0.1:{port}", LOG_LEVEL="INFO")
    subprocess.run([*CLI, "migrate"], env={**os.environ, **env}, check=True,
                   capture_output=True)
    log = work / "gateway.log"
    process = _start_gateway(env, port, log)
    try:
        _ready(port, tls.client_context(material[tls.CA_SECRET]), process, log)
        yield port, {**env, "SIMULATOR_PORT": str(sim_port)}
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_port_serves_https_with_the_configured_certificate(
        gateway: tuple[int, dict[str, str]], material: dict[str, Path]) -> None:
    port, _ = gateway
    context = tls.client_context(material[tls.CA_SECRET])
    # Under the name its callers inside the stack use.
    assert presented(port, context, tls.INTERNAL_NAME) == der(material[tls.CERT_SECRET])
    reply = httpx.get(f"https://127.0.0.1:{port}/health", verify=context, timeout=5)
    assert reply.status_code == 200 and reply.json() == {"status": "ok"}


def test_a_client_that_does_not_trust_the_ca_is_refused(
        gateway: tuple[int, dict[str, str]]) -> None:
    port, _ = gateway
    stranger = tls.client_context(None)  # the system's roots: our CA is not among them
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"https://127.0.0.1:{port}/health", verify=stranger, timeout=5)


def test_plain_http_on_the_port_gets_no_answer(gateway: tuple[int, dict[str, str]]) -> None:
    port, _ = gateway
    received = plain_http_answer(port)
    assert not received.startswith(b"HTTP/"), received[:200]
    assert b"status" not in received
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)


def test_the_healthcheck_follows_https(gateway: tuple[int, dict[str, str]],
                                       material: dict[str, Path]) -> None:
    port, _ = gateway
    url = f"https://127.0.0.1:{port}/health"
    ca = str(material[tls.CA_SECRET])

    def check(*args: str) -> int:
        return subprocess.run([sys.executable, "-c", PROBE, "healthcheck",
                               *args], check=False, capture_output=True).returncode

    assert check(url, "--cafile", ca, "--server-name", tls.INTERNAL_NAME) == 0
    # The certificate is checked, not only the port: another name, or no CA, fails.
    assert check(url, "--cafile", ca, "--server-name", "payments.example.invalid") == 1
    assert check(url, "--server-name", tls.INTERNAL_NAME) == 1
    assert check(f"http://127.0.0.1:{port}/health") == 1


@pytest.mark.parametrize("trusted", [True, False], ids=["trusting-the-ca", "not-trusting"])
def test_the_simulators_webhook_settles_a_payment_over_https_only_when_it_trusts_the_ca(
        gateway: tuple[int, dict[str, str]], material: dict[str, Path], tmp_path: Path,
        trusted: bool) -> None:
    """No worker runs: only the provider's webhook, delivered to the HTTPS gateway and
    checked against the CA, can confirm the payment. A simulator that does not trust the
    CA delivers nothing, and says why."""
    port, env = gateway
    sim_port = int(env["SIMULATOR_PORT"])
    trust = {"GATEWAY_TLS_CA_FILE": str(material[tls.CA_SECRET])} if trusted else {}
    simulator_env = {**os.environ, **base_environ(DATA_DIR=str(tmp_path), **trust)}
    log = tmp_path / "simulator.log"
    simulator = subprocess.Popen([*CLI, "simulator", "--port", str(sim_port)],
                                 env=simulator_env, stdout=log.open("wb"),
                                 stderr=subprocess.STDOUT)
    context = tls.client_context(material[tls.CA_SECRET])
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.put(f"http://127.0.0.1:{sim_port}/_control/zain_cash",
                          json={"mode": "healthy", "settle_after_seconds": 1},
                          timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                assert simulator.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        headers = {**auth(), "Idempotency-Key": random_key()}
        created = httpx.post(f"https://127.0.0.1:{port}/api/v1/payments", verify=context,
                             json=body("zain_cash"), headers=headers, timeout=15)
        assert created.status_code == 201, created.text
        payment = created.json()
        assert payment["status"] == "processing"
        deadline = time.monotonic() + 20
        while (payment["status"] != "confirmed" if trusted
               else "CERTIFICATE_VERIFY_FAILED" not in log.read_text()):
            assert time.monotonic() < deadline, f"{payment}\n{log.read_text()}"
            time.sleep(0.3)
            payment = httpx.get(f"https://127.0.0.1:{port}/api/v1/payments/{payment['id']}",
                                verify=context, headers=auth(), timeout=5).json()
        if not trusted:
            assert "simulator.webhook_failed" in log.read_text()
            assert payment["status"] == "processing"
    finally:
        simulator.terminate()
        simulator.wait(timeout=30)


def test_a_simulator_with_an_unreadable_ca_file_does_not_start(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    env = {**os.environ, **base_environ(DATA_DIR=str(tmp_path), GATEWAY_TLS_CA_FILE=str(bad))}
    result = subprocess.run([*CLI, "simulator", "--port", str(free_port())], env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "GATEWAY_TLS_CA_FILE" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(("change", "message"), [
    ({"GATEWAY_TLS_CERT_FILE": "", "GATEWAY_TLS_KEY_FILE": ""}, "plain HTTP on 0.0.0.0"),
    ({"GATEWAY_TLS_KEY_FILE": ""}, "together"),
    ({"GATEWAY_TLS_CERT_FILE": "/nonexistent/cert.pem"}, "does not exist"),
    ({"GATEWAY_TLS_KEY_FILE": "stranger"}, "do not load together"),
])
def test_a_gateway_that_would_serve_plain_http_beyond_the_host_does_not_start(
        material: dict[str, Path], tmp_path: Path, change: dict[str, str],
        message: str) -> None:
    if change.get("GATEWAY_TLS_KEY_FILE") == "stranger":  # a key that is not the cert's
        stranger = tmp_path / "stranger.key"
        stranger.write_text(tls.development_pair().key)
        change = {"GATEWAY_TLS_KEY_FILE": str(stranger)}
    env = {**os.environ, **_environment(tmp_path, material), **change}
    result = subprocess.run([*CLI, "serve", "--port", str(free_port())], env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr + result.stdout


def test_plain_http_on_loopback_is_the_embedded_default(tmp_path: Path) -> None:
    """`make run`'s gateway: no TLS files, 127.0.0.1, plain HTTP."""
    port = free_port()
    env = base_environ(DATA_DIR=str(tmp_path))
    subprocess.run([*CLI, "migrate"], env={**os.environ, **env}, check=True,
                   capture_output=True)
    log = tmp_path / "gateway.log"
    process = _start_gateway(env, port, log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
                break
            except httpx.HTTPError:
                assert process.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
    finally:
        process.terminate()
        process.wait(timeout=30)
