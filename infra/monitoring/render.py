"""Every generated file as (path → text), and writing or checking them against the disk."""

from __future__ import annotations

from pathlib import Path

from infra.monitoring.alertmanager import TEMPLATES, config, route_cases
from infra.monitoring.dashboards import dashboards
from infra.monitoring.generated import HEADER, json_file, text_file, yaml_file
from infra.monitoring.prometheus_config import (
    TARGETS,
    check_jobs,
    grafana_dashboards,
    grafana_datasource,
    jobs,
    prometheus_config,
    swarm_prometheus_config,
    target_files,
)
from infra.monitoring.rules import rule_files
from infra.monitoring.ruletests import test_files
from infra.monitoring.spec import Spec
from infra.monitoring.timing import check

SPEC_PATH = Path("monitoring/thresholds.yaml")
# Folders the generator owns: a generated file there that it no longer produces is stale.
OWNED = ("monitoring/rules", "monitoring/dashboards", "alertmanager",
         "monitoring/grafana/provisioning", "monitoring/prometheus.yml",
         "monitoring/prometheus.swarm.yml", TARGETS)


def render(spec: Spec, *, check_timing: bool = True) -> dict[str, str]:
    """Repository-relative path → file text, for every file the spec generates. Refuses
    (SpecError, ValueError) a spec whose alerts cannot page in time or watch unknown jobs;
    a time-scaled drill render, whose values are not scaled, skips the timing check."""
    if check_timing:
        check(spec)
    known = jobs()
    check_jobs(spec, known)
    files: dict[str, str] = {}
    for name, doc in rule_files(spec).items():
        files[f"monitoring/rules/{name}"] = yaml_file(doc, name)
    for name, doc in test_files(spec).items():
        files[f"monitoring/rules/tests/{name}"] = yaml_file(doc, name)
    files["alertmanager/alertmanager.yml"] = yaml_file(config(spec), "alertmanager.yml")
    files["alertmanager/templates/nilecare.tmpl"] = text_file(
        TEMPLATES, "nilecare.tmpl", "{{{{/* {} */}}}}")
    files["alertmanager/tests/routes.yml"] = yaml_file({"cases": route_cases(spec)}, "routes.yml")
    for name, doc in dashboards(spec).items():
        files[f"monitoring/dashboards/{name}"] = json_file(doc, name)
    files["monitoring/prometheus.yml"] = yaml_file(prometheus_config(spec, known),
                                                   "prometheus.yml")
    files["monitoring/prometheus.swarm.yml"] = yaml_file(
        swarm_prometheus_config(spec, known), "prometheus.swarm.yml")
    for path, targets in target_files(known).items():
        files[path] = yaml_file(targets, path)
    files["monitoring/grafana/provisioning/datasources/prometheus.yml"] = yaml_file(
        grafana_datasource(spec), "datasource")
    files["monitoring/grafana/provisioning/dashboards/nilecare.yml"] = yaml_file(
        grafana_dashboards(), "dashboard provider")
    return dict(sorted(files.items()))


def _generated_on_disk(root: Path) -> set[str]:
    found: set[str] = set()
    for owned in OWNED:
        base = root / owned
        paths = [base] if base.is_file() else base.rglob("*") if base.is_dir() else []
        for path in paths:
            if not path.is_file():
                continue
            if HEADER in path.read_text(encoding="utf-8", errors="replace")[:400]:
                found.add(path.relative_to(root).as_posix())
    return found


def write(files: dict[str, str], root: Path) -> list[str]:
    """Write `files` under `root`, delete stale generated files; returns the paths changed."""
    changed = []
    for rel, text in files.items():
        path = root / rel
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            changed.append(rel)
    for rel in sorted(_generated_on_disk(root) - files.keys()):
        (root / rel).unlink()
        changed.append(rel)
    return changed


def drift(files: dict[str, str], root: Path) -> list[str]:
    """Paths whose committed text differs from what the spec generates (or that are stale)."""
    out = []
    for rel, text in files.items():
        path = root / rel
        if not path.exists():
            out.append(f"{rel} (missing)")
        elif path.read_text(encoding="utf-8") != text:
            out.append(f"{rel} (differs)")
    out.extend(f"{rel} (stale, no longer generated)"
               for rel in sorted(_generated_on_disk(root) - files.keys()))
    return out
