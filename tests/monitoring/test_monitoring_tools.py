"""The generated rules, promtool tests and Alertmanager config, proven by the real tools."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.monitoring.render import render
from infra.monitoring.spec import Spec


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_promtool_check_rules(root: Path, which: Any) -> None:
    rules = sorted((root / "monitoring/rules").glob("*.yml"))
    assert len(rules) == 3
    result = run(which.tool("promtool"), "check", "rules", *map(str, rules))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass(root: Path, which: Any) -> None:
    tests = sorted((root / "monitoring/rules/tests").rglob("*_test.yml"))
    assert len(tests) >= 12
    result = run(which.tool("promtool"), "test", "rules", *map(str, tests))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_generated_promtool_test(root: Path, spec: Spec) -> None:
    names: set[str] = set()
    for path in (root / "monitoring/rules/tests").rglob("*_test.yml"):
        doc = yaml.safe_load(path.read_text())
        names |= {a["alertname"] for t in doc["tests"] for a in t.get("alert_rule_test", [])}
    assert set(spec.alert_names()) <= names


@pytest.mark.parametrize("threshold", ["0.12", "0.08"])
def test_promtool_catches_a_rule_that_drifts_from_its_test(
    tmp_path: Path, spec: Spec, which: Any, threshold: str
) -> None:
    """Rules rendered from a different threshold must fail the committed tests."""
    from decimal import Decimal

    alert = spec.alerts[0]
    changed = dataclasses.replace(
        spec, alerts=(dataclasses.replace(alert, threshold=Decimal(threshold)), *spec.alerts[1:]))
    original = render(spec)
    for rel, text in render(changed).items():
        if rel.startswith("monitoring/rules/") and "/tests/" not in rel:
            (tmp_path / Path(rel).name).write_text(text)
    tests = tmp_path / "tests"
    tests.mkdir()
    name = "payment_failure_rate_high_test.yml"
    (tests / name).write_text(original[f"monitoring/rules/tests/{name}"])
    result = run(which.tool("promtool"), "test", "rules", str(tests / name))
    assert result.returncode != 0, result.stdout


def test_amtool_check_config(root: Path, which: Any) -> None:
    result = run(which.tool("amtool"), "check-config", str(root / "alertmanager/alertmanager.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 templates" in result.stdout


def _cases(root: Path) -> list[dict[str, Any]]:
    doc = yaml.safe_load((root / "alertmanager/tests/routes.yml").read_text())
    cases: list[dict[str, Any]] = doc["cases"]
    return cases


def test_every_alert_has_a_route_case(root: Path, spec: Spec) -> None:
    assert {c["labels"]["alertname"] for c in _cases(root)} == set(spec.alert_names())


def test_generated_route_cases_reach_their_receivers(root: Path, which: Any) -> None:
    amtool = which.tool("amtool")
    config = str(root / "alertmanager/alertmanager.yml")
    failures = []
    for case in _cases(root):
        labels = [f"{k}={v}" for k, v in sorted(case["labels"].items())]
        result = run(amtool, "config", "routes", "test", f"--config.file={config}",
                     f"--verify.receivers={case['receiver']}", *labels)
        if result.returncode != 0:
            failures.append(f"{labels} → {result.stdout.strip()} (expected {case['receiver']})")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(("labels", "receiver"), [
    # Hand-written: the DESIGN.md routing table, independent of the spec's route keys.
    (["alertname=PaymentDatabaseDown", "severity=critical", "service=mysql-payment"], "pagerduty"),
    (["alertname=Anything", "severity=critical", "service=x"], "pagerduty"),
    (["alertname=Anything", "severity=high", "service=x"], "slack"),
    (["alertname=Anything", "severity=medium", "service=x"], "email"),
    (["alertname=Watchdog", "severity=none"], "heartbeat"),
    (["alertname=Unrouted"], "slack"),
])
def test_design_routing_table(root: Path, which: Any, labels: list[str], receiver: str) -> None:
    result = run(which.tool("amtool"), "config", "routes", "test",
                 f"--config.file={root / 'alertmanager/alertmanager.yml'}",
                 f"--verify.receivers={receiver}", *labels)
    assert result.returncode == 0, result.stdout
    assert result.stdout.strip() == receiver


def test_promtool_check_config(tmp_path: Path, root: Path, which: Any) -> None:
    """The generated prometheus.yml, rendered with an overlay that points its rule and target
    directories at this checkout instead of /etc (the way a drill or an operator does)."""
    overlay = tmp_path / "local.yaml"
    overlay.write_text(yaml.safe_dump({"prometheus": {
        "rules_dir": str(root / "monitoring/rules"),
        "targets_dir": str(root / "monitoring/targets")}}))
    out = tmp_path / "out"
    done = run(sys.executable, "-m", "infra.monitoring", "render", "--overlay", str(overlay),
               "--output", str(out), cwd=root)
    assert done.returncode == 0, done.stderr
    committed = yaml.safe_load((root / "monitoring/prometheus.yml").read_text())
    local = yaml.safe_load((out / "monitoring/prometheus.yml").read_text())
    assert local["global"] == committed["global"]
    assert [j["job_name"] for j in local["scrape_configs"]] == \
        [j["job_name"] for j in committed["scrape_configs"]]
    for name in ("prometheus.yml", "prometheus.swarm.yml"):  # file_sd; the swarm's tasks
        result = run(which.tool("promtool"), "check", "config", str(out / "monitoring" / name))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS: 3 rule files found" in result.stdout


def test_an_overlay_render_refuses_to_overwrite_the_committed_files(root: Path) -> None:
    done = run(sys.executable, "-m", "infra.monitoring", "render", "--environment",
               "compose-sinks", cwd=root)
    assert done.returncode == 2
    assert "needs --output" in done.stderr
