"""The simulator's own API for tests and drills: provider controls, calls served, health."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from litestar import get, put
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException
from litestar.params import FromPath, JSONBody

from service.simulator.state import MODES, SimulatorState


@get("/_control")
async def list_controls(sim: NamedDependency[SimulatorState]) -> dict[str, dict[str, Any]]:
    return {code: asdict(control) for code, control in sorted(sim.controls.items())}


@put("/_control/{provider:str}")
async def set_control(
    provider: FromPath[str], data: JSONBody[dict[str, Any]], sim: NamedDependency[SimulatorState]
) -> dict[str, Any]:
    control = sim.control(provider)
    allowed = set(asdict(control))
    unknown = set(data) - allowed
    if unknown:
        raise HTTPException(status_code=400, detail=f"unknown control fields: {sorted(unknown)}")
    if "mode" in data and data["mode"] not in MODES:
        raise HTTPException(status_code=400, detail=f"mode must be one of {', '.join(MODES)}")
    current = asdict(control)
    for key, value in data.items():
        # A value of another kind than the default would break every later call.
        kind = type(current[key])
        ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            ok, value = True, float(value)
        if not ok:
            raise HTTPException(status_code=400,
                                detail=f"{key} must be a {kind.__name__}, got {value!r}")
        if key in ("decline_rate", "error_rate") and not 0 <= value <= 1:
            raise HTTPException(status_code=400, detail=f"{key} must be between 0 and 1")
        if key in ("latency_ms", "settle_after_seconds") and value < 0:
            raise HTTPException(status_code=400, detail=f"{key} must not be negative")
    for key, value in data.items():
        setattr(control, key, float(value) if isinstance(current[key], float) else value)
    return asdict(control)


@get("/_calls")
async def list_calls(sim: NamedDependency[SimulatorState]) -> list[dict[str, Any]]:
    """Every call served so far (provider, operation, reference, started, finished)."""
    return [asdict(call) for call in sim.calls]


@get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}
