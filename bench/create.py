"""The gateway's keyed create and its GET, side by side with a bare Litestar app on the same
server, in interleaved rounds; and what one create costs the database.

    .venv/bin/python bench/create.py [--rounds 3] [--seconds 10] [--provider visa]
                                     [--fast-commits] [--floor]

Starts a throwaway MariaDB and Redis, the provider simulator, one gateway process and the
bare app (bench/bare.py) under the same uvicorn settings, and drives each with wrk (Debian's
`wrk`): 64 connections for throughput, one connection for latency without queueing. Prints
each round, then the median ratio and its spread, then the statements and commits one
create costs, read from the server's status counters. The MariaDB commits as the deployed
MySQL does: the redo log and a row-based binary log flushed to disk at each commit
(`--fast-commits`: as the tests run it, without).

`--floor` adds, in each round, the create's two floors (bench/floor.py): the same
statements in the same round trips and the same provider call, with nothing else the gateway
does, on worker threads and on the event loop. It prints each load's CPU per request (the
app's, the database's, the simulator's, from /proc), the statements and commits of each
floor's create beside the gateway's, and what 0.25x the echo would take of the machine's
cores at those costs.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from service.api.auth import mint
from service.db.migrate import prepare
from tests.conftest import TEST_JWT_SECRET, base_environ
from tests.servers import commits, free_port, mariadb_server, redis_server, serving

BODY = ('{"provider":"%s","amount":"150.00","currency":"SDG","patient_id":"p-1",'
        '"payer_phone":"+249912345678"}')
# The GETs read these many payments in turn.
READ_SET = 500
# The --only loads that drive a floor (bench/floor.py).
FLOORS = ("floor", "loop_floor")
# One key per request: each thread numbers its own, so no two requests share one.
CREATE_LUA = """
-- Each wrk thread has its own Lua state; setup() names each one, so no two requests of a
-- run share an Idempotency-Key.
counter = 0
threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tag", tostring(threads) .. "-" .. tostring(os.time()) .. "-" ..
             tostring(math.random(1, 1000000000)))
end
request = function()
  counter = counter + 1
  local headers = {}
  headers["Content-Type"] = "application/json"
  headers["Authorization"] = "Bearer %(token)s"
  headers["Idempotency-Key"] = "bench-" .. tag .. "-" .. counter
  return wrk.format("POST", "%(path)s", headers, '%(body)s')
end
"""
GET_LUA = """
-- Each request reads another of the payments the bench made (a batch of GETs then holds
-- distinct ids, as a busy gateway's does); each wrk thread starts at its own place.
ids = {%(ids)s}
at = 0
function setup(thread)
  thread:set("at", math.random(0, #ids - 1))
end
request = function()
  at = at %% #ids + 1
  return wrk.format("GET", "%(path)s" .. ids[at], {["Authorization"] = "Bearer %(token)s"})
end
"""


@dataclass(frozen=True)
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    # Milliseconds of CPU per request, of each watched process (wrk(..., watch=...)).
    cpu_ms: dict[str, float] = field(default_factory=dict)


def cpu_seconds(pid: int) -> float:
    """The process's user and system CPU so far (/proc/<pid>/stat, fields 14 and 15)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url: str, script: Path, connections: int, seconds: int,
        watch: dict[str, int] | None = None) -> Result:
    """Drive `url` with wrk (a request may take 30 s before wrk counts it as an error);
    with `watch` (name: pid), also the CPU each of those processes spent per request,
    after a second's pause for the work of the load before to end."""
    threads = min(connections, 2)
    if watch:
        time.sleep(1)
    before = {name: cpu_seconds(pid) for name, pid in (watch or {}).items()}
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d",
                          f"{seconds}s", "--timeout", "30s", "--latency", "-s", str(script),
                          url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    found = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = int(found.group(1)) if found else 0
    socket_errors = re.search(r"Socket errors: (.*)", out)
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
    done = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return Result(rps, p50, p99, errors,
                  {name: (cpu_seconds(pid) - before[name]) * 1000 / max(done, 1)
                   for name, pid in (watch or {}).items()})


def statements_per_create(server: str, database: str, gateway: str, token: str,
                          provider: str, count: int = 200, path: str = "/api/v1/payments",
                          tag: str = "gateway") -> dict[str, float]:
    """What one keyed create at `gateway` + `path` costs the server, from its counters over
    `count` creates one after another (`tag` keeps their keys apart from other apps')."""
    names = ("Questions", "Com_select", "Com_insert", "Com_update", "Com_delete",
             "Com_commit", "Com_rollback", "Com_begin")
    engine = create_engine(server)

    def counters() -> dict[str, int]:
        with engine.connect() as c:
            rows = c.execute(text("SHOW GLOBAL STATUS WHERE Variable_name IN (" +
                                  ", ".join(f"'{n}'" for n in names) + ")")).all()
        return {name: int(value) for name, value in rows}

    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    with httpx.Client(base_url=gateway, timeout=30) as client:
        client.post(path, content=BODY % provider,
                    headers={**headers, "Idempotency-Key": f"warm-{tag}"})
        before = counters()
        for n in range(count):
            reply = client.post(path, content=BODY % provider,
                                headers={**headers, "Idempotency-Key": f"count-{tag}-{n}"})
            assert reply.status_code == 201, reply.text
        after = counters()
    engine.dispose()
    # Our own SHOW STATUS is one question (and no Com_select) each time.
    spent = {n: (after[n] - before[n]) / count for n in names}
    spent["Questions"] -= 1 / count
    return spent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--provider", default="visa")
    parser.add_argument("--only", choices=("create", "get", "create_1", "get_1", *FLOORS),
                        help="drive only this load (for a profiler attached to the gateway)")
    parser.add_argument("--floor", action="store_true",
                        help="also drive the create's floor (bench/floor.py) in each round")
    parser.add_argument("--fast-commits", action="store_true",
                        help="run the database as the tests do, with no flush to disk at "
                             "commit and no binary log (default: as deployed)")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="nilecare-bench-"))
    database = mariadb_server(base / "mariadb", durable=not args.fast_commits)
    cache = redis_server(base / "redis")
    with database.running() as server, cache.running() as redis_url:
        engine = create_engine(server)
        with engine.begin() as c:
            c.execute(text("CREATE DATABASE bench CHARACTER SET utf8mb4"))
        engine.dispose()
        url = f"{server}/bench"
        engine = create_engine(url)
        prepare(engine)
        engine.dispose()
        print(f"database: {commits(server)}", flush=True)
        ports = {"sim": free_port(), "gateway": free_port(), "bare": free_port(),
                 "floor": free_port(), "loop_floor": free_port()}
        env = base_environ(DATABASE_URL=url, REDIS_URL=redis_url, LOG_LEVEL="WARNING",
                           DATA_DIR=str(base / "data"), RATE_LIMIT_PER_MINUTE="100000000",
                           PROVIDER_SIMULATOR_URL=f"http://127.0.0.1:{ports['sim']}",
                           PROVIDER_TIMEOUT_SECONDS="10",
                           GATEWAY_PUBLIC_URL="http://127.0.0.1:9")
        exe = [sys.executable, "-m"]
        token = mint(TEST_JWT_SECRET, "bench", ["accountant"], "fac-1", 4 * 3600)
        gateway = f"http://127.0.0.1:{ports['gateway']}"
        bare = f"http://127.0.0.1:{ports['bare']}"
        floor = f"http://127.0.0.1:{ports['floor']}"
        loop_floor = f"http://127.0.0.1:{ports['loop_floor']}"

        def uvicorn(app: str, port: int) -> list[str]:
            return [*exe, "uvicorn", app, "--factory", "--host", "127.0.0.1", "--port",
                    str(port), "--no-access-log", "--log-level", "warning"]

        here = {"PYTHONPATH": str(Path(__file__).parent.parent)}
        floors = args.floor or args.only in FLOORS
        with serving("simulator", [*exe, "service.cli", "simulator", "--port",
                                   str(ports["sim"])], base / "sim.log",
                     f"http://127.0.0.1:{ports['sim']}/health", env) as simulator, \
                serving("gateway", [*exe, "service.cli", "serve", "--port",
                                    str(ports["gateway"])], base / "gateway.log",
                        f"{gateway}/health/ready", env) as gateway_process, \
                serving("bare app", uvicorn("bench.bare:app_factory", ports["bare"]),
                        base / "bare.log", f"{bare}/item/x", {**env, **here}) as bare_app, \
                (serving("floor app", uvicorn("bench.floor:app_factory", ports["floor"]),
                         base / "floor.log", f"{floor}/health", {**env, **here})
                 if floors else nullcontext()) as floor_app, \
                (serving("event-loop floor app",
                         uvicorn("bench.floor:async_app_factory", ports["loop_floor"]),
                         base / "loop_floor.log", f"{loop_floor}/health", {**env, **here})
                 if floors else nullcontext()) as loop_floor_app:
            httpx.put(f"http://127.0.0.1:{ports['sim']}/_control/{args.provider}",
                      json={"settle_after_seconds": 0}).raise_for_status()
            with httpx.Client(base_url=gateway, headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": "application/json"}) as client:
                made = [client.post("/api/v1/payments", content=BODY % args.provider).json()
                        for _ in range(READ_SET)]
            ids = ", ".join(f'"{m["id"]}"' for m in made)
            scripts = {}
            for name, template, path, body in (
                    ("create", CREATE_LUA, "/api/v1/payments", BODY % args.provider),
                    ("echo", CREATE_LUA, "/echo", BODY % args.provider),
                    ("floor", CREATE_LUA, "/floor", BODY % args.provider),
                    ("get", GET_LUA, "/api/v1/payments/", ""),
                    ("bare_get", GET_LUA, "/item/", "")):
                scripts[name] = base / f"{name}.lua"
                scripts[name].write_text(template % {"token": token, "path": path,
                                                     "body": body, "ids": ids})
            if args.only:
                connections = 1 if args.only.endswith("_1") else 64
                target = {"floor": floor, "loop_floor": loop_floor}.get(args.only, gateway)
                script = scripts["floor" if args.only in FLOORS else
                                 args.only.removesuffix("_1")]
                print(args.only, wrk(target, script, connections, args.seconds))
                return
            assert database.process is not None, "running"
            pids = {"database": database.process.pid, "simulator": simulator.pid}

            def watch(app: subprocess.Popen[bytes] | None) -> dict[str, int]:
                """The CPU to count per request: the app's, the database's, the
                provider simulator's."""
                assert app is not None, "started"
                return {"app": app.pid, **pids}

            if args.floor:
                # Their first requests open the floors' connections: not counted.
                wrk(floor, scripts["floor"], 64, 2)
                wrk(loop_floor, scripts["floor"], 64, 2)
            rounds: list[dict[str, Result]] = []
            for number in range(1, args.rounds + 1):
                r = {
                    "echo": wrk(bare, scripts["echo"], 64, args.seconds, watch(bare_app)),
                    "create": wrk(gateway, scripts["create"], 64, args.seconds,
                                  watch(gateway_process)),
                    **({"floor": wrk(floor, scripts["floor"], 64, args.seconds,
                                     watch(floor_app)),
                        "loop_floor": wrk(loop_floor, scripts["floor"], 64, args.seconds,
                                          watch(loop_floor_app))}
                       if args.floor else {}),
                    "bare_get": wrk(bare, scripts["bare_get"], 64, args.seconds),
                    "get": wrk(gateway, scripts["get"], 64, args.seconds),
                    "create_1": wrk(gateway, scripts["create"], 1, args.seconds),
                    "get_1": wrk(gateway, scripts["get"], 1, args.seconds),
                }
                rounds.append(r)
                print(f"round {number}: create {r['create'].rps:7.0f} req/s vs echo "
                      f"{r['echo'].rps:7.0f} ({r['create'].rps / r['echo'].rps:.3f}x); "
                      f"GET {r['get'].rps:7.0f} vs bare {r['bare_get'].rps:7.0f} "
                      f"({r['get'].rps / r['bare_get'].rps:.3f}x); " +
                      (f"floor {r['floor'].rps:7.0f} ({r['floor'].rps / r['echo'].rps:.3f}x), "
                       f"on the event loop {r['loop_floor'].rps:7.0f} "
                       f"({r['loop_floor'].rps / r['echo'].rps:.3f}x); "
                       if args.floor else "") +
                      f"1 connection: create p50 "
                      f"{r['create_1'].p50_ms:.1f} ms p99 {r['create_1'].p99_ms:.1f} ms, GET "
                      f"p50 {r['get_1'].p50_ms:.1f} ms p99 {r['get_1'].p99_ms:.1f} ms; "
                      f"errors {sum(x.errors for x in r.values())}", flush=True)

            print(f"\n{args.rounds} rounds of {args.seconds} s, provider {args.provider}:")
            summary("keyed create / bare echo (64 c)",
                    [r["create"].rps / r["echo"].rps for r in rounds])
            if args.floor:
                floor_report(rounds)
            summary("GET / bare GET (64 c)", [r["get"].rps / r["bare_get"].rps for r in rounds])
            summary("create req/s (64 c)", [r["create"].rps for r in rounds], "")
            summary("create p50 ms (1 c)", [r["create_1"].p50_ms for r in rounds], "")
            summary("create p99 ms (1 c)", [r["create_1"].p99_ms for r in rounds], "")
            summary("GET p99 ms (1 c)", [r["get_1"].p99_ms for r in rounds], "")
            print("\nper keyed create, from SHOW GLOBAL STATUS over 200 creates one at a time:")
            for name, app, path in (("gateway", gateway, "/api/v1/payments"),
                                    ("floor", floor, "/floor"),
                                    ("event-loop floor", loop_floor, "/floor")):
                if app == gateway or args.floor:
                    spent = statements_per_create(server, "bench", app, token, args.provider,
                                                  path=path, tag=name.replace(" ", "-"))
                    print(f"  {name + ':':<18}" +
                          ", ".join(f"{k} {v:.1f}" for k, v in spent.items()))
            for name in ("floor", "loop_floor"):
                if args.floor and any(r[name].errors for r in rounds):
                    log = (base / f"{name}.log").read_text()
                    print(f"\n{name} had errors; the end of its log:\n{log[-3000:]}")


def summary(name: str, values: list[float], unit: str = "x") -> None:
    print(f"  {name:<34} median {statistics.median(values):8.3f}{unit}  "
          f"(spread {min(values):.3f}-{max(values):.3f})")


def floor_report(rounds: list[dict[str, Result]]) -> None:
    """The floors' ratios, each load's CPU per create, and what 0.25x the echo would take
    of the machine at the event-loop floor's cost per create."""
    def median(name: str, part: str) -> float:
        return statistics.median(r[name].cpu_ms[part] for r in rounds)

    summary("create's floor / bare echo (64 c)",
            [r["floor"].rps / r["echo"].rps for r in rounds])
    summary("floor on the event loop / echo",
            [r["loop_floor"].rps / r["echo"].rps for r in rounds])
    summary("keyed create / its floor (64 c)",
            [r["create"].rps / r["floor"].rps for r in rounds])
    print("  CPU per request at 64 c, ms (median over the rounds):")
    for name, label in (("echo", "bare echo"), ("create", "gateway"), ("floor", "floor"),
                        ("loop_floor", "event-loop floor")):
        cpu = {part: median(name, part) for part in ("app", "database", "simulator")}
        print(f"    {label:<17} app {cpu['app']:5.2f}  database {cpu['database']:5.2f}  "
              f"simulator {cpu['simulator']:5.2f}  sum {sum(cpu.values()):5.2f}")
    goal = 0.25 * statistics.median(r["echo"].rps for r in rounds)
    database, echo = median("loop_floor", "database"), median("echo", "app")
    loop = database + median("loop_floor", "app") + median("loop_floor", "simulator")
    print(f"  at 0.25x the echo ({goal:.0f} creates/s), with each cost per create as measured "
          f"at the floors' rate, of the {len(os.sched_getaffinity(0))} cores: the database "
          f"alone {database * goal / 1000:.2f}; with the gateway's request and the provider's "
          f"each costing what an echo costs {(database + 2 * echo) * goal / 1000:.2f}; at "
          f"the event-loop floor's costs {loop * goal / 1000:.2f}")

if __name__ == "__main__":
    main()
