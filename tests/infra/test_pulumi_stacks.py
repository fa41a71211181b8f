"""The real Pulumi program, run for both stacks under mocks: what `pulumi up` would create."""

from __future__ import annotations

from typing import Any

import pytest

from infra import topology
from infra.components.secrets import MissingSecretError
from tests.infra.pulumi_harness import REPO, StackRun, operator_secrets, run_stack

SECRET_SIG = "4dabf18193072939515e22adb298388d"
CORE = set(topology.CORE_SERVICES)


def ports(container: Any) -> set[tuple[str, int, int]]:
    return {
        (p["ip"], int(p["external"]), int(p["internal"]))
        for p in container.inputs.get("ports", [])
    }


def networks_of(container: Any) -> set[str]:
    return {n["name"] for n in container.inputs["networksAdvanced"]}


def unwrap(value: Any) -> Any:
    return value["value"] if isinstance(value, dict) and SECRET_SIG in value else value


def test_both_stacks_run_the_six_containers_by_name(dev: StackRun, prod: StackRun) -> None:
    for run in (dev, prod):
        containers = run.containers()
        assert set(containers) >= CORE
        for service in CORE:
            assert containers[service].inputs["name"] == service
    # Dev adds the provider simulator and the monitoring profile; prod only monitoring.
    assert set(dev.containers()) == CORE | {"payment-provider-simulator", "prometheus",
                                            "alertmanager", "grafana"}
    assert set(prod.containers()) == CORE | {"prometheus", "alertmanager", "grafana"}


def test_ports_keep_the_database_redis_and_exporter_on_loopback(dev: StackRun) -> None:
    c = dev.containers()
    assert ports(c["payment-gateway-service"]) == {("0.0.0.0", 7001, 7001)}
    assert ports(c["mysql-payment"]) == {("127.0.0.1", 3307, 3306)}
    assert ports(c["redis-payment"]) == {("127.0.0.1", 6380, 6379)}
    assert ports(c["payment-metrics-exporter"]) == {("127.0.0.1", 9101, 9101)}
    assert ports(c["payment-worker"]) == set()
    assert ports(c["payment-reconciliation-worker"]) == set()


def test_prod_publishes_neither_mysql_nor_redis(prod: StackRun) -> None:
    c = prod.containers()
    assert ports(c["mysql-payment"]) == set()
    assert ports(c["redis-payment"]) == set()
    assert ports(c["payment-gateway-service"]) == {("0.0.0.0", 7001, 7001)}
    # Nothing to publish, so no host-access network: the stores sit on the backend alone.
    nets = {r.inputs["name"] for r in prod.of_type("docker:index/network:Network")}
    assert nets == {"nilecare-frontend", "nilecare-backend"}
    assert networks_of(c["mysql-payment"]) == {"nilecare-backend"}
    assert networks_of(c["redis-payment"]) == {"nilecare-backend"}


def test_healthchecks_and_restart_policies(dev: StackRun, prod: StackRun) -> None:
    expected = {
        "payment-gateway-service": ["CMD", "nilecare", "healthcheck",
                                    "https://127.0.0.1:7001/health",
                                    "--cafile", "/run/secrets/gateway_tls_ca",
                                    "--server-name", "payment-gateway-service"],
        "payment-metrics-exporter": ["CMD", "nilecare", "healthcheck", "http://127.0.0.1:9101/health"],
        "payment-worker": ["CMD", "nilecare", "healthcheck", "--worker"],
        "payment-reconciliation-worker": ["CMD", "nilecare", "healthcheck", "--worker",
                                          "--heartbeat", "/tmp/nilecare-reconciliation.heartbeat"],
    }
    for run in (dev, prod):
        for name, container in run.containers().items():
            check = container.inputs["healthcheck"]
            assert check["tests"], name
            assert int(check["retries"]) >= 3, name
            assert container.inputs["restart"] == "unless-stopped", name
            assert container.inputs["wait"] is True, name
            if name in expected:
                assert check["tests"] == expected[name]
    redis_check = " ".join(dev.containers()["redis-payment"].inputs["healthcheck"]["tests"])
    assert "REDISCLI_AUTH" in redis_check and "/run/secrets/redis_password" in redis_check
    mysql_check = " ".join(dev.containers()["mysql-payment"].inputs["healthcheck"]["tests"])
    assert "/run/secrets/database_password" in mysql_check and "-h 127.0.0.1" in mysql_check


def test_limits_grow_to_prod_and_fit_redis_maxmemory(dev: StackRun, prod: StackRun) -> None:
    d, p = dev.containers(), prod.containers()
    for name in CORE:
        assert 0 < d[name].inputs["memory"] <= p[name].inputs["memory"], name
        assert 0 < float(d[name].inputs["cpus"]) <= float(p[name].inputs["cpus"]), name
    assert p["mysql-payment"].inputs["memory"] > d["mysql-payment"].inputs["memory"]
    for run in (d, p):
        mysql = run["mysql-payment"].inputs
        pool = f"--innodb-buffer-pool-size={int(mysql['memory']) // 2}M"
        assert pool in mysql["command"], mysql["command"]
    for run in (d, p):
        redis = run["redis-payment"]
        assert redis.inputs["memory"] > 1024
        command = " ".join(redis.inputs["command"])
        assert "--maxmemory 1gb" in command and "--maxmemory-policy allkeys-lru" in command


def test_the_backend_network_is_internal_and_holds_mysql_and_redis_alone(dev: StackRun) -> None:
    nets = {r.inputs["name"]: r.inputs for r in dev.of_type("docker:index/network:Network")}
    assert nets["nilecare-backend"]["internal"] is True
    assert "options" not in nets["nilecare-backend"]
    assert not nets["nilecare-frontend"].get("internal", False)
    # The published 3307/6380 need a non-internal network; this one gives the host a way in and
    # the stores no NAT out and no traffic with each other or anything else attached to it.
    host_access = nets["nilecare-host-access"]
    assert host_access["internal"] is False
    assert host_access["options"] == {"com.docker.network.bridge.enable_icc": "false",
                                      "com.docker.network.bridge.enable_ip_masquerade": "false"}
    c = dev.containers()
    assert networks_of(c["mysql-payment"]) == {"nilecare-backend", "nilecare-host-access"}
    assert networks_of(c["redis-payment"]) == {"nilecare-backend", "nilecare-host-access"}
    assert {n for n, container in c.items()
            if "nilecare-host-access" in networks_of(container)} == {"mysql-payment",
                                                                    "redis-payment"}
    for name in ("payment-gateway-service", "payment-worker", "payment-reconciliation-worker",
                 "payment-metrics-exporter"):
        assert networks_of(c[name]) == {"nilecare-backend", "nilecare-frontend"}
    # Other containers find each other by service name, whatever the name prefix.
    for name, container in c.items():
        assert all(n["aliases"] == [name] for n in container.inputs["networksAdvanced"])


def test_data_lives_in_named_volumes(dev: StackRun) -> None:
    volumes = {r.inputs["name"] for r in dev.of_type("docker:index/volume:Volume")}
    assert {"nilecare-mysql-data", "nilecare-redis-data", "nilecare-statements"} <= volumes
    c = dev.containers()

    def mounts(name: str) -> dict[str, str]:
        return {v["containerPath"]: v["volumeName"] for v in c[name].inputs["volumes"]}

    assert mounts("mysql-payment")["/var/lib/mysql"] == "nilecare-mysql-data"
    assert mounts("redis-payment")["/data"] == "nilecare-redis-data"
    assert mounts("payment-reconciliation-worker")[topology.STATEMENT_DIR] == "nilecare-statements"


def test_service_processes_run_as_non_root_on_a_read_only_root(dev: StackRun) -> None:
    c = dev.containers()
    for name in ("payment-gateway-service", "payment-worker", "payment-reconciliation-worker",
                 "payment-metrics-exporter"):
        assert c[name].inputs["user"] == topology.NILECARE_USER
        assert c[name].inputs["readOnly"] is True
        assert "/tmp" in c[name].inputs["tmpfs"]
    assert c["redis-payment"].inputs["user"] == "redis"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_no_secret_in_plain_envs(stack: str, dev: StackRun, prod: StackRun) -> None:
    run = dev if stack == "dev" else prod
    secret_values = [r.state["hex"] for r in run.of_type("random:index/randomBytes:RandomBytes")]
    if stack == "prod":
        secret_values += list(operator_secrets().values())
    assert secret_values
    secret_env_names = {s.name.upper() for s in topology.SECRETS}
    for name, container in run.containers().items():
        envs = container.inputs.get("envs", [])
        for entry in envs:
            key, _, value = entry.partition("=")
            assert key not in secret_env_names, f"{name} carries {key} in its environment"
            assert not any(secret in value for secret in secret_values), f"{name}: {key}"
        assert not any(secret in part for part in container.inputs.get("command", [])
                       for secret in secret_values)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_secrets_arrive_as_secret_file_uploads(stack: str, dev: StackRun, prod: StackRun) -> None:
    run = dev if stack == "dev" else prod
    model = topology.build()
    for name, container in run.containers().items():
        service = model.service(name)
        uploads = container.inputs.get("uploads")
        if not service.secrets:
            continue
        assert isinstance(uploads, dict) and SECRET_SIG in uploads, f"{name} uploads are not secret"
        files = {u["file"]: u["content"] for u in unwrap(uploads) if "content" in u}
        for mount in service.secrets:
            assert files[mount.target], f"{name} lacks {mount.target}"
    gateway = {u["file"]: u["content"]
               for u in unwrap(run.containers()["payment-gateway-service"].inputs["uploads"])}
    assert len(gateway["/run/secrets/encryption_key"]) == 64
    bytes.fromhex(gateway["/run/secrets/encryption_key"])
    if stack == "prod":
        operator = operator_secrets()
        assert gateway["/run/secrets/zain_cash_api_key"] == operator["nilecare:zainCashApiKey"]
        assert gateway["/run/secrets/encryption_key"] == operator["nilecare:encryptionKey"]
    am = {u["file"] for u in unwrap(run.containers()["alertmanager"].inputs["uploads"])}
    assert {"/etc/alertmanager/secrets/pagerduty_routing_key",
            "/etc/alertmanager/secrets/slack_webhook_url",
            "/etc/alertmanager/secrets/smtp_password"} <= am


def test_the_secret_outputs_are_marked_secret(dev: StackRun, prod: StackRun) -> None:
    for run in (dev, prod):
        values = run.namespace["secrets"].values
        assert set(values) == {s.name for s in topology.SECRETS}
        for name, output in values.items():
            assert run.is_secret(output), name


def test_prod_refuses_to_invent_provider_credentials() -> None:
    with pytest.raises(MissingSecretError, match="nilecare:zainCashApiKey"):
        run_stack("prod")


def test_prod_refuses_to_run_without_its_tls_files() -> None:
    secrets = {k: v for k, v in operator_secrets().items()
               if not k.startswith("nilecare:gatewayTls")}
    with pytest.raises(MissingSecretError,
                       match="nilecare:gatewayTlsCa, nilecare:gatewayTlsCert, "
                             "nilecare:gatewayTlsKey"):
        run_stack("prod", secrets, list(secrets))


def test_dev_takes_the_tls_files_all_from_config_or_all_generated() -> None:
    """A supplied certificate beside a generated key would never load: refused, by name."""
    given = {"nilecare:gatewayTlsCert": "-----BEGIN CERTIFICATE-----\noperator\n"}
    with pytest.raises(Exception, match="set together; nilecare:gatewayTlsCa, "
                                        "nilecare:gatewayTlsKey is empty"):
        run_stack("dev", given, list(given))


def test_dev_generates_one_tls_pair_for_every_reader(dev: StackRun) -> None:
    """The gateway serves the certificate the development CA signed, with that key; the
    callers (healthcheck, simulator, Prometheus) trust that CA; the certificate also names
    the stack's public host."""
    [ca] = dev.of_type("tls:index/selfSignedCert:SelfSignedCert")
    [cert] = dev.of_type("tls:index/locallySignedCert:LocallySignedCert")
    [request] = dev.of_type("tls:index/certRequest:CertRequest")
    keys = {r.name: r.state["privateKeyPem"]
            for r in dev.of_type("tls:index/privateKey:PrivateKey")}
    assert ca.inputs["isCaCertificate"] is True and cert.inputs["caCertPem"] == ca.state["certPem"]
    assert "payment-gateway-service" in request.inputs["dnsNames"]
    assert "127.0.0.1" in request.inputs["ipAddresses"]

    def files(name: str) -> dict[str, str]:
        return {u["file"]: u["content"]
                for u in unwrap(dev.containers()[name].inputs["uploads"]) if "content" in u}

    gateway = files("payment-gateway-service")
    assert gateway["/run/secrets/gateway_tls_cert"] == cert.state["certPem"]
    # The key the certificate was requested with, not the CA's.
    requested = unwrap(request.inputs["privateKeyPem"])
    assert gateway["/run/secrets/gateway_tls_key"] == requested
    assert requested in keys.values() and requested != unwrap(ca.inputs["privateKeyPem"])
    for name, path in (("payment-gateway-service", "/run/secrets/gateway_tls_ca"),
                       ("payment-provider-simulator", "/run/secrets/gateway_tls_ca"),
                       ("prometheus", "/etc/prometheus/secrets/gateway_tls_ca")):
        assert files(name)[path] == ca.state["certPem"], name


def test_images_built_in_dev_overridden_in_prod(dev: StackRun, prod: StackRun) -> None:
    dev_images = {r.inputs["name"]: r for r in dev.of_type("docker:index/remoteImage:RemoteImage")}
    built = dev_images["nilecare-payments:latest"].inputs["build"]
    assert built["dockerfile"] == "Dockerfile" and built["context"] == str(REPO)
    assert "BASE_IMAGE" in built["buildArgs"]
    assert {"mysql:8.4", "redis:7.4"} <= set(dev_images)

    prod_images = {
        r.inputs["name"]: r for r in prod.of_type("docker:index/remoteImage:RemoteImage")
    }
    assert all("build" not in r.inputs for r in prod_images.values())
    assert all(name.startswith("registry.nilecare.sd/") for name in prod_images)
    # Containers run exactly the image the override named (by its computed id).
    c = prod.containers()
    mysql = prod_images["registry.nilecare.sd/mirror/mysql:8.4"]
    assert c["mysql-payment"].inputs["image"] == mysql.state["imageId"]
    service = prod_images["registry.nilecare.sd/nilecare-payments:0.1.0"]
    assert c["payment-worker"].inputs["image"] == service.state["imageId"]


def test_an_image_override_in_config_reaches_the_container() -> None:
    run = run_stack("dev", {"nilecare:redisImage": "mirror.local/redis:7.4"})
    images = {r.inputs["name"]: r for r in run.of_type("docker:index/remoteImage:RemoteImage")}
    assert "redis:7.4" not in images
    assert run.containers()["redis-payment"].inputs["image"] == (
        images["mirror.local/redis:7.4"].state["imageId"]
    )


def test_prod_deploys_through_the_remote_docker_host(prod: StackRun, dev: StackRun) -> None:
    providers = prod.of_type("pulumi:providers:docker")
    assert [p.inputs["host"] for p in providers] == ["ssh://deploy@payments-prod.nilecare.sd"]
    for container in prod.containers().values():
        assert container.provider and "docker-host" in container.provider
    assert dev.of_type("pulumi:providers:docker") == []


def test_exports_name_the_urls_and_the_containers(dev: StackRun, prod: StackRun) -> None:
    assert dev.exports["gatewayUrl"] == "https://127.0.0.1:7001"
    assert prod.exports["metricsUrl"] == "http://payments.nilecare.sd:9101/metrics"
    names = {k: prod.resolve(v) for k, v in prod.exports["containerNames"].items()}
    assert set(names) >= CORE
    assert names["payment-gateway-service"] == "payment-gateway-service"


def test_prometheus_gets_the_config_the_rules_and_a_target_file_per_job(
        dev: StackRun, prod: StackRun) -> None:
    """The generated file_sd targets travel with the config, so every process that counts
    events is scraped on a Pulumi host as in compose."""
    from infra.monitoring.prometheus_config import jobs

    for run in (dev, prod):
        files = {u["file"] for u in unwrap(run.containers()["prometheus"].inputs["uploads"])}
        assert "/etc/prometheus/prometheus.yml" in files
        assert "/etc/prometheus/rules/payments.yml" in files
        assert {f"/etc/prometheus/targets/{job.name}.yml" for job in jobs()} <= files
        env = {e.partition("=")[0]: e.partition("=")[2]
               for e in unwrap(run.containers()["payment-worker"].inputs["envs"])}
        assert env["WORKER_METRICS_PORT"] == "9102" and env["METRICS_HOST"] == "0.0.0.0"
