"""The API docs as an integrator on an air-gapped host meets them: the page loads nothing
from outside the host, and headless Chromium, with every request that would leave the host
refused, renders the API's operations."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import base_environ
from tests.e2e.test_cli import _cli, _ready
from tests.servers import free_port

# Everything but 127.0.0.1 goes to a closed port, and no name resolves.
OFFLINE = ["--proxy-server=http://127.0.0.1:9",
           "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"]


def test_swagger_ui_lists_the_operations_with_the_network_blocked(tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    assert chromium, "chromium is missing: tools/system-deps test installs it"
    env = base_environ(DATA_DIR=str(tmp_path / "data"))
    assert _cli("migrate", env=env).returncode == 0
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with (tmp_path / "gateway.log").open("wb") as log:
        gateway = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--port", str(port)],
            env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while not _ready(f"{base}/health/ready"):
                assert gateway.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
            page = httpx.get(f"{base}/schema/swagger").text
            loaded = re.findall(r"""(?:src|href)=["']([^"']+)""", page)
            assert loaded and all(url.startswith("/schema/assets/") for url in loaded), loaded
            dom = subprocess.run(
                [chromium, "--headless", "--no-sandbox", "--disable-gpu",
                 f"--user-data-dir={tmp_path / 'profile'}", *OFFLINE,
                 "--virtual-time-budget=15000", "--dump-dom", f"{base}/schema/swagger"],
                capture_output=True, text=True, timeout=120, check=True).stdout
        finally:
            gateway.send_signal(signal.SIGTERM)
            gateway.wait(timeout=30)
    listed = set(re.findall(r'class="opblock-summary-path" data-path="([^"]+)"', dom))
    assert {"/api/v1/payments", "/api/v1/payments/{payment_id}",
            "/api/v1/payments/{payment_id}/refunds", "/api/v1/reconciliation/runs",
            "/api/v1/webhooks/{provider}"} <= listed, dom[-2000:]
    assert "Unable to render this definition" not in dom
