"""The README's quick start as a new user meets it: start what `make run` starts, paste the
printed token into the README's "try it" block and run that block with bash, as written."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.settings import Settings
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
MARKER = "<!-- quickstart"
JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+")
BANNER = "NileCare Payments is running"
README_GATEWAY = "127.0.0.1:7001"
# Prepended to the block, which it leaves untouched: curl also prints the HTTP status after
# the body, since the README's `curl -s` exits 0 on a 4xx or 5xx.
STATUS_SHIM = "curl() { command curl --write-out '\\n%{http_code}' \"$@\"; }\n"


def quickstart_block(readme: str) -> str:
    """The fenced block that follows the quick-start marker, verbatim."""
    lines = readme.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(MARKER)]
    assert len(starts) == 1, f"README.md needs exactly one {MARKER} … --> marker"
    fence = lines[starts[0] + 1]
    assert fence.startswith("```sh"), f"the marker must be followed by a ```sh block: {fence!r}"
    end = lines.index("```", starts[0] + 2)
    return "\n".join(lines[starts[0] + 2:end]) + "\n"


def make_run_command() -> list[str]:
    """The command the Makefile's `run` target runs (its one recipe line)."""
    makefile = (ROOT / "Makefile").read_text().splitlines()
    rule = next(i for i, line in enumerate(makefile) if line.startswith("run:"))
    recipe = makefile[rule + 1]
    assert recipe.startswith("\t") and not makefile[rule + 2].startswith("\t"), recipe
    return shlex.split(recipe.strip())


@pytest.fixture
def product(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path, int]]:
    """`make run`'s command with its data in tmp_path and every port free."""
    ports: set[int] = set()
    while len(ports) < 5:  # a port just released can be handed out again
        ports.add(free_port())
    gateway, exporter, worker, reconciliation, simulator = sorted(ports)
    env = {k: v for k, v in os.environ.items() if k.upper() not in Settings.env_names()}
    env.update(GATEWAY_PORT=str(gateway), EXPORTER_PORT=str(exporter),
               WORKER_METRICS_PORT=str(worker), RECONCILIATION_METRICS_PORT=str(reconciliation),
               WORKER_POLL_INTERVAL_SECONDS="0.5")
    log = tmp_path / "run.log"
    command = [*make_run_command(), "--data-dir", str(tmp_path / "var"),
               "--simulator-port", str(simulator)]
    with log.open("wb") as handle:
        # Its own session, so the supervisor and every child it starts are stopped together.
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=handle,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield process, log, gateway
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(40)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


def _printed_token(process: subprocess.Popen[bytes], log: Path) -> str:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        assert process.poll() is None, text[-3000:]
        found = JWT.search(text.split(BANNER, 1)[1]) if BANNER in text else None
        if found:
            return found.group(0)
        time.sleep(0.3)
    raise AssertionError("no token printed within 90 s:\n" + log.read_text()[-3000:])


def test_the_readme_block_reads_as_a_fresh_machine_needs() -> None:
    block = quickstart_block((ROOT / "README.md").read_text())
    assert re.search(r"^TOKEN=\.\.\. ", block, re.MULTILINE), block
    assert block.count(README_GATEWAY) == 1, block
    # A bare Debian has no uuidgen (uuid-runtime); the kernel gives the same.
    assert "uuidgen" not in block and "/proc/sys/kernel/random/uuid" in block
    command = make_run_command()
    assert Path(command[0]).name == "nilecare" and command[1:] == ["dev"], command


def test_the_readme_quickstart_creates_a_payment(
        product: tuple[subprocess.Popen[bytes], Path, int]) -> None:
    process, log, port = product
    token = _printed_token(process, log)
    block = quickstart_block((ROOT / "README.md").read_text())
    script = re.sub(r"^TOKEN=\.\.\.", f"TOKEN={token}", block, count=1, flags=re.MULTILINE)
    # Only the gateway's port differs from the README: it was free here, 7001 may not be.
    script = script.replace(README_GATEWAY, f"127.0.0.1:{port}")
    assert token in script and f":{port}/" in script

    ran = subprocess.run(["bash", "-e", "-c", STATUS_SHIM + script], capture_output=True,
                         text=True, timeout=60, cwd=ROOT, check=False)
    assert ran.returncode == 0, ran.stderr
    body, _, status = ran.stdout.rpartition("\n")
    assert status == "201", ran.stdout
    payment = json.loads(body)
    assert payment["id"].startswith("pay_"), payment
    assert (payment["provider"], payment["amount"], payment["currency"]) == (
        "zain_cash", "150.00", "SDG"), payment

    # What the README says next: the simulator settles it a moment later.
    url = f"http://127.0.0.1:{port}/api/v1/payments/{payment['id']}"
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + 30
    status_now = ""
    while time.monotonic() < deadline and status_now != "confirmed":
        reply = httpx.get(url, headers=headers, timeout=10)
        assert reply.status_code == 200, reply.text
        status_now = reply.json()["status"]
        time.sleep(0.5)
    assert status_now == "confirmed", log.read_text()[-3000:]
