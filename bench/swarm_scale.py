"""Keyed creates through the swarm's edge with one, two and three gateway replicas, side by
side in interleaved rounds: what a replica adds on this machine, and where the CPU goes.

    .venv/bin/python -m bench.swarm_scale [--rounds 2] [--seconds 15]

Deploys the stack on a one-node swarm as `make e2e-swarm` does (the engine must not be in a
swarm already; it leaves it at the end), raises the gateway's rate limit for the one bench
token (a rolling update), and has the simulator settle card payments at once. Then, per
round and replica count: `docker service scale`, convergence, wrk with 64 connections for
throughput and one for latency, and one `docker stats` sample in the middle of the
64-connection run. Every replica, MySQL, Redis, the workers and wrk share this machine's
cores, so the ratios say how far one host scales, not how far a cluster of them would.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from bench.create import BODY, CREATE_LUA, Result, wrk
from tests.e2e.containers.compose_stack import sh
from tests.e2e.swarm.swarm_stack import EDGE_URL, Swarm, deployed, swarm_state

GATEWAY = "payment-gateway-service"
PROVIDER = "visa"


def _stats() -> dict[str, float]:
    """CPU % of each running container of the stack, by service, summed over replicas."""
    out = subprocess.run(["docker", "stats", "--no-stream", "--format",
                          "{{.Name}} {{.CPUPerc}}"], capture_output=True, text=True,
                         check=False).stdout
    found: dict[str, float] = {}
    for line in out.splitlines():
        name, cpu = line.split()
        service = name.split(".")[0].removeprefix("nilecare_")
        found[service] = found.get(service, 0.0) + float(cpu.rstrip("%"))
    return found


def _measure(script: Path, seconds: int) -> tuple[Result, Result, dict[str, float]]:
    sampled: dict[str, float] = {}

    def sample() -> None:
        time.sleep(seconds / 2)
        sampled.update(_stats())

    probe = threading.Thread(target=sample)
    probe.start()
    loaded = wrk(EDGE_URL, script, 64, seconds)
    probe.join()
    single = wrk(EDGE_URL, script, 1, seconds)
    return loaded, single, sampled


def _prepare(stack: Swarm) -> str:
    sh("docker", "service", "update", "--detach", "--no-resolve-image", "--env-add",
       "RATE_LIMIT_PER_MINUTE=100000000", stack.service(GATEWAY))
    stack.wait_update(GATEWAY, ("completed",))
    simulator = stack.containers("payment-provider-simulator")[0]
    sh("docker", "exec", simulator, "python3", "-c",
       "import json, urllib.request; urllib.request.urlopen(urllib.request.Request("
       f"'http://127.0.0.1:7002/_control/{PROVIDER}', method='PUT', "
       "data=json.dumps({'settle_after_seconds': 0}).encode(), "
       "headers={'Content-Type': 'application/json'}))")
    return stack.token()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--replicas", type=int, nargs="*", default=[1, 2, 3])
    args = parser.parse_args()
    if swarm_state() == "active":
        raise SystemExit("this engine is already in a swarm: docker swarm leave --force first")
    base = Path(tempfile.mkdtemp(prefix="nilecare-swarm-bench-"))
    with deployed(base) as stack:
        token = _prepare(stack)
        script = base / "create.lua"
        script.write_text(CREATE_LUA % {"token": token, "path": "/api/v1/payments",
                                        "body": BODY % PROVIDER})
        results: dict[int, list[tuple[Result, Result, dict[str, float]]]] = {}
        for number in range(1, args.rounds + 1):
            for replicas in args.replicas:
                sh("docker", "service", "scale", "--detach", f"{stack.service(GATEWAY)}="
                   f"{replicas}", quiet=True)
                stack.wait_converged()
                loaded, single, cpu = _measure(script, args.seconds)
                results.setdefault(replicas, []).append((loaded, single, cpu))
                busiest = ", ".join(f"{k} {v:.0f}%" for k, v in
                                    sorted(cpu.items(), key=lambda kv: -kv[1])[:4])
                print(f"round {number}, {replicas} gateway(s): {loaded.rps:6.0f} creates/s at "
                      f"64 connections (p50 {loaded.p50_ms:.0f} ms, p99 {loaded.p99_ms:.0f} ms,"
                      f" errors {loaded.errors}); 1 connection p50 {single.p50_ms:.1f} ms p99 "
                      f"{single.p99_ms:.1f} ms; CPU {busiest}", flush=True)
        print("\nmedians (ratio to one replica, round by round):")
        one = [r[0].rps for r in results[args.replicas[0]]]
        for replicas, runs in results.items():
            rates = [r[0].rps for r in runs]
            ratios = [rate / base_rate for rate, base_rate in zip(rates, one, strict=True)]
            gateway_cpu = statistics.median(r[2].get(GATEWAY, 0.0) for r in runs)
            mysql_cpu = statistics.median(r[2].get("mysql-payment", 0.0) for r in runs)
            print(f"  {replicas} gateway(s): {statistics.median(rates):6.0f} creates/s "
                  f"({statistics.median(ratios):.2f}x, spread {min(ratios):.2f}-"
                  f"{max(ratios):.2f}); per replica {statistics.median(rates) / replicas:5.0f};"
                  f" p99 at 1 connection {statistics.median(r[1].p99_ms for r in runs):.1f} ms;"
                  f" gateways' CPU {gateway_cpu:.0f}%, MySQL's {mysql_cpu:.0f}%; errors "
                  f"{sum(r[0].errors + r[1].errors for r in runs)}")


if __name__ == "__main__":
    main()
