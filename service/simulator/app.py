"""The simulator's Litestar app: the providers' routes and its own, over one state."""

from __future__ import annotations

import random

from litestar import Litestar
from litestar.di import Provide

from service.settings import Settings
from service.simulator.charges import create_charge, get_charge, refund_charge
from service.simulator.control import health, list_calls, list_controls, set_control
from service.simulator.state import SimulatorState


def create_simulator(settings: Settings, rng: random.Random | None = None) -> Litestar:
    state = SimulatorState(settings, rng)

    def provide_state() -> SimulatorState:
        return state

    return Litestar(
        route_handlers=[
            create_charge,
            get_charge,
            refund_charge,
            list_controls,
            set_control,
            list_calls,
            health,
        ],
        dependencies={"sim": Provide(provide_state, use_cache=True, sync_to_thread=False)},
        openapi_config=None,
        logging_config=None,  # service/logs.py's one stream, as the gateway's
    )
