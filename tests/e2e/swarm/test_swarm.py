"""The stack on a real swarm: replicas behind the edge, the workers sharing the queue, a
rolling update and a broken one under keyed traffic, and tasks killed mid-traffic.

The tests run in order against one deployment; each states what the earlier ones leave."""

from __future__ import annotations

import time

import httpx
import pytest

from infra.monitoring.render import SPEC_PATH
from infra.monitoring.spec import load
from service import tls
from tests.e2e.containers.compose_stack import REPO, sh
from tests.e2e.swarm.swarm_stack import EDGE_URL, Swarm, Traffic, payments_of
from tests.tlsprobe import der, plain_http_answer, presented

GATEWAY = "payment-gateway-service"
WORKER = "payment-worker"
CREATED = r'nilecare_http_requests_total\{method="POST",route="/api/v1/payments",status="201"\}'
STATUS_CALLS = r'nilecare_provider_requests_total\{operation="status"'
SETTLED_WITHIN_S = 240
state: dict[str, Traffic] = {}


def _settled(swarm: Swarm, traffic: Traffic) -> dict[str, str]:
    """Wait until every payment of `traffic` is confirmed; id → status."""
    deadline = time.monotonic() + SETTLED_WITHIN_S
    found: dict[str, str] = {}
    while time.monotonic() < deadline:
        found = payments_of(swarm, traffic.marker)
        if found and set(found.values()) == {"confirmed"}:
            return found
        time.sleep(3)
    raise AssertionError(f"not all confirmed after {SETTLED_WITHIN_S}s: {found}")


def _no_payment_lost_or_doubled(swarm: Swarm, traffic: Traffic) -> None:
    assert traffic.answers, "no traffic was sent"
    assert traffic.failed() == {}
    stored = payments_of(swarm, traffic.marker)
    # One payment per key: the ids the clients were given are exactly the ones stored.
    assert sorted(stored) == sorted(set(traffic.payments.values()))
    assert len(set(traffic.payments.values())) == len(traffic.payments)


def test_three_gateways_and_two_workers_run_healthy(running: Swarm) -> None:
    replicas = running.replicas()
    assert replicas[GATEWAY] == (3, 3)
    assert replicas[WORKER] == (2, 2)
    assert len(running.containers(GATEWAY, healthy=True)) == 3
    assert len(running.containers(WORKER, healthy=True)) == 2


def test_the_edge_serves_https_with_the_stack_certificate(running: Swarm) -> None:
    """The edge's host port, where traffic comes from other hosts: the certificate of the
    stack's secret, checked against its CA, and no answer to plain HTTP."""
    configured = der(running.workdir / "secrets" / tls.CERT_SECRET)
    assert presented(7001, running.trust, "payment-edge") == configured
    assert httpx.get(f"{EDGE_URL}/health", verify=running.trust, timeout=10).status_code == 200
    received = plain_http_answer(7001)
    assert not received.startswith(b"HTTP/"), received[:200]
    assert b'"status"' not in received


def test_keyed_creates_through_the_edge_reach_every_gateway(running: Swarm) -> None:
    # The next test counts the workers' status checks; the simulator's webhooks (over HTTPS
    # to the gateways) would settle these payments before any worker asked.
    running.simulator("zain_cash", send_webhooks=False)
    traffic = Traffic(running.token(), running.trust)
    with traffic.running(threads=3, pace_s=0.3):
        time.sleep(15)
    assert traffic.first_try_failures() == {}
    assert len(traffic.payments) >= 30
    created = {c: running.metric(c, 7001, CREATED) for c in running.containers(GATEWAY)}
    assert len(created) == 3 and all(n > 0 for n in created.values()), created
    assert sum(created.values()) == len(traffic.payments)
    state["first"] = traffic


def test_prometheus_scrapes_every_replica_and_sums_them(running: Swarm) -> None:
    # Discovered from the swarm's tasks: one target per replica, named <service>.<slot>.
    created = len(state["first"].payments)
    total = ('sum(nilecare_http_requests_total{job="payment-gateway",'
             'route="/api/v1/payments",status="201"})')
    deadline = time.monotonic() + 120
    up: dict[str, set[str]] = {}
    summed = 0.0
    while time.monotonic() < deadline:
        up = {job: {r["metric"]["instance"] for r in running.query(f'up{{job="{job}"}} == 1')}
              for job in ("payment-gateway", "payment-worker", "payment-metrics-exporter")}
        answer = running.query(total)
        summed = float(answer[0]["value"][1]) if answer else 0.0
        if (len(up["payment-gateway"]) == 3 and len(up["payment-worker"]) == 2
                and summed == created):
            break
        time.sleep(5)
    assert up["payment-gateway"] == {f"{GATEWAY}.{n}" for n in (1, 2, 3)}
    assert up["payment-worker"] == {f"{WORKER}.{n}" for n in (1, 2)}
    assert up["payment-metrics-exporter"] == {"payment-metrics-exporter.1"}
    assert summed == created


def test_the_workers_share_the_queue_and_check_each_payment_once(running: Swarm) -> None:
    try:
        traffic = state["first"]
        settled = _settled(running, traffic)
        assert sorted(settled) == sorted(traffic.payments.values())
        # The simulator confirms a wallet payment at its first status check: one call each.
        ids = ",".join(f"'{p}'" for p in settled)
        calls = running.sql("SELECT a.payment_id, COUNT(*) FROM payment_attempts a JOIN payments"
                            " p ON p.id = a.payment_id WHERE a.operation = 'status' AND"
                            f" p.public_id IN ({ids}) GROUP BY a.payment_id")
        assert len(calls) == len(settled)
        assert {int(n) for _, n in calls} == {1}
        # Both workers took part (the counters are per process).
        by_worker = {c: running.metric(c, 9102, STATUS_CALLS)
                     for c in running.containers(WORKER)}
        assert len(by_worker) == 2 and all(n > 0 for n in by_worker.values()), by_worker
        assert sum(by_worker.values()) == len(settled)
    finally:  # the later tests' payments settle by webhook or by poll
        running.simulator("zain_cash", send_webhooks=True)


def test_a_rolling_update_under_keyed_traffic_drops_and_doubles_nothing(running: Swarm) -> None:
    before = set(running.containers(GATEWAY))
    new = "nilecare-payments:e2e-rolled"
    sh("docker", "tag", running.env["NILECARE_IMAGE"], new)
    traffic = Traffic(running.token(), running.trust)
    with traffic.running(threads=3, pace_s=0.25):
        time.sleep(3)
        sh("docker", "service", "update", "--detach", "--no-resolve-image", "--image", new,
           running.service(GATEWAY))
        assert running.wait_update(GATEWAY, ("completed", "rollback_completed",
                                             "paused", "rollback_paused")) == "completed"
        time.sleep(3)
    assert running.image(GATEWAY).startswith(new)
    assert not before & set(running.containers(GATEWAY))  # every task replaced
    assert traffic.first_try_failures() == {}
    _no_payment_lost_or_doubled(running, traffic)
    state["rolled"] = traffic


def test_a_broken_image_is_rolled_back_automatically(
        running: Swarm, tmp_path_factory: pytest.TempPathFactory) -> None:
    good = running.image(GATEWAY)
    context = tmp_path_factory.mktemp("broken")
    # The gateway's command fails at once: no task of this image ever becomes healthy.
    (context / "Dockerfile").write_text(
        f"FROM {running.env['NILECARE_IMAGE']}\nUSER root\n"
        "RUN rm /opt/nilecare/bin/nilecare\nUSER 10001:10001\n")
    sh("docker", "build", "-q", "-t", "nilecare-payments:e2e-broken", str(context),
       env={**running.env, "DOCKER_BUILDKIT": "0"})
    traffic = Traffic(running.token(), running.trust)
    with traffic.running(threads=2, pace_s=0.3):
        sh("docker", "service", "update", "--detach", "--no-resolve-image", "--image",
           "nilecare-payments:e2e-broken", running.service(GATEWAY))
        assert running.wait_update(GATEWAY, ("completed", "rollback_completed", "paused",
                                             "rollback_paused")) == "rollback_completed"
    assert running.image(GATEWAY) == good
    # The rollback starts each good task before it stops a broken one: wait for the last
    # broken one to go.
    assert running.wait_converged()[GATEWAY] == (3, 3)
    assert traffic.first_try_failures() == {}
    _no_payment_lost_or_doubled(running, traffic)


def test_killed_gateway_and_worker_tasks_are_replaced_and_nothing_is_lost(
        running: Swarm) -> None:
    running.wait_converged()
    gateway, worker = running.containers(GATEWAY)[0], running.containers(WORKER)[0]
    # A client that sees a failure sends the same key again, as integrators are told to.
    traffic = Traffic(running.token(), running.trust, retry=True)
    with traffic.running(threads=3, pace_s=0.25):
        time.sleep(3)
        sh("docker", "kill", gateway)
        sh("docker", "kill", worker)
        running.wait_converged()
        time.sleep(3)
    assert gateway not in running.containers(GATEWAY)
    assert worker not in running.containers(WORKER)
    _no_payment_lost_or_doubled(running, traffic)
    # The killed worker's leases run out and the payments come due again.
    for earlier in (state["rolled"], traffic):
        assert set(_settled(running, earlier)) == set(earlier.payments.values())


# Drill faults of the spec that a swarm can inflict as written: the process's service stopped
# (scaled to nothing). Process name in the spec → its service and its replica count here.
STOPPED = {"gateway": (GATEWAY, 3), "database": ("mysql-payment", 1)}


@pytest.mark.parametrize(("name", "process"), [("PaymentGatewayDown", "gateway"),
                                               ("PaymentDatabaseDown", "database")])
def test_a_stopped_service_pages_through_the_swarms_own_monitoring(
        running: Swarm, name: str, process: str) -> None:
    """The alert's own drill fault on the swarm: every task of the service gone. The swarm's
    Prometheus (its targets found in the Docker API) fires the committed rule, and its
    Alertmanager holds the alert for the receiver its severity routes to, within the response
    target; with the service back, the alert clears. The gateway's alert turns on discovery
    (the job's targets vanish), the database's on the exporter's reading."""
    spec = load(REPO / SPEC_PATH)
    alert = next(a for a in spec.alerts if a.name == name)
    assert any(d.fault == "stop" and d.process == process for d in alert.drills), alert.drills
    route = spec.alertmanager.routes[alert.severity]
    target = (alert.response_target or route.response_target).seconds
    service, replicas = STOPPED[process]
    running.wait_converged()
    started = time.monotonic()
    sh("docker", "service", "scale", "--detach", f"{running.service(service)}=0")
    try:
        while not (found := running.alerts(alert.name)):
            assert time.monotonic() - started < target, f"no {alert.name} in {target} s"
            time.sleep(5)
        paged = time.monotonic() - started
        assert {r["name"] for a in found for r in a["receivers"]} == {route.receiver}, found
        print(f"{alert.name}: routed to {route.receiver} {paged:.0f} s after {service} went "
              f"(target {target} s)")
    finally:
        sh("docker", "service", "scale", "--detach", f"{running.service(service)}={replicas}")
    running.wait_converged()
    running.wait_edge()
    deadline = time.monotonic() + target
    while running.alerts(alert.name):
        assert time.monotonic() < deadline, f"{alert.name} still active {target} s after"
        time.sleep(5)


def test_the_stack_file_is_the_committed_one(running: Swarm) -> None:
    # What ran is the committed stack, but for the overlay encryption this kernel lacks.
    committed = (REPO / "deploy" / "swarm" / "stack.yml").read_text(encoding="utf-8")
    deployed = (running.workdir / "stack.yml").read_text(encoding="utf-8")
    strip = [line for line in committed.splitlines()
             if line.strip() not in ("driver_opts:", 'encrypted: ""')
             and "file:" not in line]
    assert strip == [line for line in deployed.splitlines() if "file:" not in line]
