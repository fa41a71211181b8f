"""Session fixtures: the dev and prod stacks, each run once under Pulumi mocks."""

from __future__ import annotations

import pytest

from tests.infra.pulumi_harness import StackRun, operator_secrets, run_stack


@pytest.fixture(scope="session")
def dev() -> StackRun:
    return run_stack("dev")


@pytest.fixture(scope="session")
def prod() -> StackRun:
    secrets = operator_secrets()
    return run_stack("prod", secrets, list(secrets))
