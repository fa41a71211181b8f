"""What the service layer costs per request, without HTTP in front: the CPU one thread spends
on a keyed create (provider visa, answered at once by the simulator) and on a read.

    .venv/bin/python -m bench.service_cpu [--count 2000] [--profile cumulative|tottime]

Starts a throwaway MariaDB and the provider simulator (in a thread of this process; its CPU
is not counted: the numbers are this thread's own time, time.thread_time), warms up, then
times `count` keyed creates and `count` reads. With --profile, prints the top of cProfile
over one more round of creates (for finding where the time goes; it slows everything down).
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import pstats
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from service.db.engine import make_engine
from service.db.migrate import prepare
from service.domain.caller import Caller
from service.services.context import Context
from service.services.creation import Creation
from service.services.idempotency import Keyed
from service.services.payments import NewPayment, PaymentService
from service.settings import load
from tests.conftest import base_environ
from tests.servers import mariadb_server
from tests.simulator import running_simulator

CALLER = Caller("bench", frozenset({"accountant"}), "fac-1")
NEW = NewPayment(provider="visa", amount=Decimal("150.00"), currency="SDG",
                 facility_id="fac-1", patient_id="p-1", payer_phone="+249912345678")


def _per_call(work: Callable[[], object], count: int) -> tuple[float, float]:
    """Microseconds of wall time and of this thread's CPU per call."""
    wall, cpu = time.perf_counter(), time.thread_time()
    for _ in range(count):
        work()
    return ((time.perf_counter() - wall) / count * 1e6,
            (time.thread_time() - cpu) / count * 1e6)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--profile", choices=("cumulative", "tottime"))
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the simulator's own client
    base = Path(tempfile.mkdtemp(prefix="nilecare-bench-"))
    with mariadb_server(base / "mariadb").running() as server:
        admin = create_engine(server)
        with admin.begin() as connection:
            connection.execute(text("CREATE DATABASE bench CHARACTER SET utf8mb4"))
        admin.dispose()
        env = base_environ(DATABASE_URL=f"{server}/bench", DATA_DIR=str(base / "data"),
                           GATEWAY_PUBLIC_URL="http://127.0.0.1:9")
        with running_simulator(load(env)) as simulator:
            httpx.put(f"{simulator}/_control/visa",
                      json={"settle_after_seconds": 0}).raise_for_status()
            settings = load({**env, "PROVIDER_SIMULATOR_URL": simulator})
            engine = make_engine(settings)
            prepare(engine)
            engine.dispose()
            ctx = Context.build(settings, pipelined=True)  # as the gateway builds it
            payments = PaymentService(ctx)
            creation = Creation(payments)
            made = [0]

            def create() -> str:
                made[0] += 1
                keyed = Keyed.of(CALLER.subject, f"k-{made[0]}", "POST", "/api/v1/payments",
                                 f'{{"n":{made[0]}}}')
                return str(creation.create(CALLER, NEW, keyed).body["id"])

            first = create()
            for _ in range(200):
                create()
                payments.queries.get(CALLER, first)
            wall, cpu = _per_call(create, args.count)
            print(f"keyed create: {cpu:6.0f} us CPU, {wall:6.0f} us wall (this thread)")
            wall, cpu = _per_call(lambda: payments.queries.get(CALLER, first), args.count)
            print(f"read:         {cpu:6.0f} us CPU, {wall:6.0f} us wall (this thread)")
            if args.profile:
                profile = cProfile.Profile()
                profile.enable()
                for _ in range(args.count):
                    create()
                profile.disable()
                pstats.Stats(profile).sort_stats(args.profile).print_stats(40)
            ctx.close()


if __name__ == "__main__":
    main()
