"""`nilecare healthcheck`, which every container runs every few seconds: right answers, and
without loading the CLI framework (a check used to cost 0.3 s of CPU importing it)."""

from __future__ import annotations

import http.server
import inspect
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from service import healthprobe
from service.cli import operations
from tests.servers import free_port


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health" else 503)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _script(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed console script, as a container's healthcheck runs it."""
    script = Path(sys.executable).parent / "nilecare"
    return subprocess.run([str(script), "healthcheck", *args], capture_output=True, text=True,
                          timeout=30, check=False, env={**os.environ})


def test_a_url_is_healthy_only_when_it_answers_2xx(server: str) -> None:
    assert _script(f"{server}/health").returncode == 0
    assert _script(f"{server}/down").returncode == 1
    assert _script(f"http://127.0.0.1:{free_port()}/health", "--timeout", "1").returncode == 1


def test_a_worker_is_healthy_while_its_heartbeat_is_fresh(tmp_path: Path) -> None:
    beat = tmp_path / "beat"
    assert _script("--worker", "--heartbeat", str(beat)).returncode == 1  # never beat
    beat.touch()
    assert _script("--worker", "--heartbeat", str(beat), "--max-age", "60").returncode == 0
    old = time.time() - 120
    os.utime(beat, (old, old))
    assert _script("--worker", "--heartbeat", str(beat), "--max-age", "60").returncode == 1


def test_a_usage_error_is_exit_2_with_a_message() -> None:
    result = _script("--max-age", "soon", "--worker")
    assert result.returncode == 2
    assert "--max-age" in result.stderr and "Traceback" not in result.stderr


def test_it_loads_no_cli_framework_and_other_commands_still_reach_the_cli() -> None:
    probe = ("import sys; sys.argv = ['nilecare', 'healthcheck', 'http://127.0.0.1:9/'];"
             "from service import healthprobe\n"
             "try:\n    healthprobe.main()\nexcept SystemExit as e:\n"
             "    print(e.code, sorted(m for m in ('typer', 'rich', 'click', 'sqlalchemy')"
             " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=30, check=True).stdout.split(maxsplit=1)
    assert out == ["1", "[]\n"]
    script = Path(sys.executable).parent / "nilecare"
    assert "from service.healthprobe import main" in script.read_text(encoding="utf-8")
    help_text = subprocess.run([str(script), "--help"], capture_output=True, text=True,
                               timeout=30, check=True).stdout
    assert "healthcheck" in help_text and "migrate" in help_text


def test_the_fast_path_takes_the_options_the_cli_documents() -> None:
    documented = set(inspect.signature(operations.healthcheck).parameters)
    parsed = {a.dest for a in healthprobe.parser()._actions if a.dest != "help"}
    assert parsed == documented
