"""Shared fixtures for the monitoring tests: the repo, the spec, and the real tools."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from infra.monitoring.render import SPEC_PATH, render
from infra.monitoring.spec import Spec, load

ROOT = Path(__file__).resolve().parents[2]

# Binary → Debian package that ships it. A missing tool is a failure, never a skip: a CI
# machine without them would otherwise pass while testing nothing.
TOOLS = {"promtool": "prometheus", "prometheus": "prometheus", "amtool": "prometheus-alertmanager",
         "prometheus-alertmanager": "prometheus-alertmanager"}


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"`{name}` is not installed: apt-get install -y {TOOLS[name]}")
    return path


@pytest.fixture(scope="session")
def which() -> type[_Which]:
    return _Which


class _Which:
    """Fixture value: `which.tool("promtool")` → path, or the test fails naming the package."""

    tool = staticmethod(tool)


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def spec() -> Spec:
    return load(ROOT / SPEC_PATH)


@pytest.fixture(scope="session")
def files(spec: Spec) -> dict[str, str]:
    return render(spec)
