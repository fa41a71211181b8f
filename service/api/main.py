"""ASGI entry point for uvicorn: settings are read when the process starts, not on import."""

from __future__ import annotations

from litestar import Litestar

from service import settings as config
from service.api.app import create_app
from service.logs import configure


def app_factory() -> Litestar:
    settings = config.load()
    configure(settings.log_level, settings.log_format)
    return create_app(settings)


def simulator_factory() -> Litestar:
    from service.simulator.app import create_simulator

    settings = config.load()
    configure(settings.log_level, settings.log_format)
    return create_simulator(settings)
