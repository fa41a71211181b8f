"""What a gateway or worker process holds for its lifetime, built once at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from service.clock import SYSTEM, Clock
from service.db.engine import make_engine, session_factory
from service.metrics import EventMetrics
from service.providers.registry import Registry
from service.sealing import Sealer
from service.settings import Settings


@dataclass
class Context:
    settings: Settings
    engine: Engine
    # Reads that are one statement (a payment, a page of payments): autocommit connections.
    reader: Engine
    sessions: sessionmaker[Session]
    providers: Registry
    metrics: EventMetrics
    sealer: Sealer
    # Every lease, expiry, retry and schedule reads this; tests pass one they move.
    clock: Clock = field(default=SYSTEM)

    @classmethod
    def build(cls, settings: Settings, registry: CollectorRegistry | None = None,
              providers: Registry | None = None, clock: Clock = SYSTEM, *,
              pipelined: bool = False) -> Context:
        # `pipelined`: the gateway's creates send a transaction's statements together.
        engine = make_engine(settings, pipelined=pipelined)
        return cls(
            settings=settings,
            engine=engine,
            reader=engine if settings.embedded else make_engine(settings, reader=True),
            sessions=session_factory(engine),
            providers=providers or Registry.from_settings(settings),
            metrics=EventMetrics(registry or CollectorRegistry()),
            sealer=Sealer(settings.encryption_key.get_secret_value()),
            clock=clock,
        )

    def close(self) -> None:
        self.providers.close()
        self.engine.dispose()
        self.reader.dispose()
