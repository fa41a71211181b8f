"""The swarm drill (`make drill-swarm`) can inflict every fault the spec names: each process
a drill stops or freezes is a service of the deployment model, and the label it removes to
take a job out of discovery is the one the swarm's Prometheus keeps targets by. The drill
itself needs dockerd and half an hour; this keeps it from drifting in between."""

from __future__ import annotations

import re
from pathlib import Path

from infra import topology
from infra.monitoring.drills import PROCESSES, Drill
from infra.monitoring.prometheus_config import jobs, swarm_prometheus_config
from infra.monitoring.render import SPEC_PATH
from infra.monitoring.spec import load
from tests.drill.swarm import SERVICE_LABEL, SERVICES, service_of
from tests.drill.system import JOBS

REPO = Path(__file__).resolve().parents[2]


def _drills() -> list[Drill]:
    spec = load(REPO / SPEC_PATH)
    return [drill for alert in spec.alerts for drill in alert.drills]


def test_every_process_a_drill_may_fault_is_a_service_of_the_model() -> None:
    services = {s.name for s in topology.build().services}
    assert set(PROCESSES) == set(SERVICES)
    assert set(SERVICES.values()) <= services, sorted(set(SERVICES.values()) - services)
    named = {d.process for d in _drills() if d.process} | {
        p for d in _drills() for p in d.while_down}
    assert {"gateway", "database", "redis"} <= named  # the spec's own faults are among them


def test_undiscovering_a_job_removes_the_label_its_swarm_targets_are_kept_by() -> None:
    model = topology.build()
    by_job = {s.metrics.job: s.name for s in model.scraped() if s.metrics is not None}
    undiscovered = {d.job for d in _drills() if d.fault == "undiscover" and d.job}
    assert undiscovered
    for job in undiscovered:
        # The service whose label the drill removes is the one that serves the job.
        assert service_of(job) == by_job[job]
    meta = "__meta_dockerswarm_service_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", SERVICE_LABEL)
    config = swarm_prometheus_config(load(REPO / SPEC_PATH), jobs(model))
    for scrape in config["scrape_configs"]:
        keep = scrape["relabel_configs"][0]
        assert keep["action"] == "keep"
        assert keep["source_labels"] == [meta]


def test_every_scraped_process_of_the_drill_has_its_service() -> None:
    assert set(JOBS) <= set(SERVICES)
