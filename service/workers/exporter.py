"""The metrics exporter: business gauges read from the database at scrape time, exposed by
prometheus_client as a custom collector (served by service.workers.exposition).

Every read costs the same whatever the tables hold: queue sizes and open issues come from
the counts the writes keep (live_counts, migration 0005), the queue's age off the end of an
index, and everything else from an indexed time window (attempts and payments by provider
and created_at, settled payments by completed_at, refunds by status and completed_at),
answered from covering indexes alone (migration 0002). bench/exporter_scrape.py measures it
with a long open queue, and tests/integration/workers/test_exporter_plans.py guards the
plans.

A scrape never waits on the database longer than `timeout`: a database that refuses, or
one that hangs with its sockets open, is reported as `nilecare_database_up 0` well inside
Prometheus's scrape timeout, so the alert fires instead of the target going stale.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, case, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from service import metrics as m
from service.clock import utcnow
from service.db.models import LiveCount, Payment, PaymentAttempt, PaymentRefund
from service.domain.catalog import PROVIDERS
from service.domain.status import SETTLED, PaymentStatus
from service.providers.outcome import ANSWERED
from service.reconciliation.reports import open_issue_counts

log = structlog.get_logger()
S = PaymentStatus
WINDOWS: dict[str, timedelta] = {"5m": timedelta(minutes=5), "1h": timedelta(hours=1)}
# A provider is down when its last DOWN_AFTER calls all went unanswered: one timeout among
# answers is noise, three in a row is an outage, and the signal turns on the third call
# instead of waiting for a window to drain. Calls older than UP_WINDOW say nothing of now.
DOWN_AFTER = 3
UP_WINDOW = timedelta(minutes=15)
WAITING = [S.AWAITING_VERIFICATION.value, S.PROCESSING.value, S.UNKNOWN.value]
PROVIDER_CODES = [p.code for p in PROVIDERS]
ELECTRONIC = [p.code for p in PROVIDERS if p.electronic]
ANSWERED_VALUES = [o.value for o in ANSWERED]
DEFAULT_TIMEOUT = 3.0
# A database that answers but reads slowly is not down: a scrape then shows the last complete
# reading, if it is no older than this.
STALE_AFTER = 300.0

Sample = tuple[m.MetricSpec, tuple[str, ...], float]


@dataclass
class Reading:
    """One scrape's values, gathered before any of them is exposed."""

    samples: list[Sample] = field(default_factory=list)
    answered: bool = False  # the database answered the probe that starts the read
    finished: float = 0.0  # time.monotonic() when the read was complete

    def add(self, spec: m.MetricSpec, labels: tuple[str, ...], value: float) -> None:
        self.samples.append((spec, labels, value))


class Exporter(Collector):
    """Reads the business state on every collect(), bounded by `timeout` seconds."""

    def __init__(self, engine: Engine, zone: Any, registry: CollectorRegistry | None = None,
                 *, timeout: float = DEFAULT_TIMEOUT,
                 payments_window: timedelta = timedelta(days=1),
                 now: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self.zone = zone
        self.timeout = timeout
        self.payments_window = payments_window
        self.now = now
        # One reader thread: a read stuck on a hung database is waited for by later scrapes
        # (each up to `timeout`), never joined by a second one piling onto the same server.
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="exporter-read")
        self._inflight: Future[Reading] | None = None
        self._current = Reading()
        self._last: Reading | None = None
        self._lock = threading.Lock()
        self.registry = registry or CollectorRegistry()
        self.registry.register(self)

    def describe(self) -> Iterable[Metric]:
        return [GaugeMetricFamily(spec.name, spec.help, labels=list(spec.labels))
                for spec in m.ALL if spec.process == "exporter"]

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        up, reading = self._read_bounded()
        families = {spec.name: GaugeMetricFamily(spec.name, spec.help, labels=list(spec.labels))
                    for spec in m.ALL if spec.process == "exporter"}
        if reading is not None:
            for spec, labels, value in reading.samples:
                families[spec.name].add_metric(list(labels), value)
        families[m.DATABASE_UP.name].add_metric([], 1.0 if up else 0.0)
        families[m.SCRAPE_DURATION.name].add_metric([], time.perf_counter() - started)
        yield from families.values()

    def scrape(self) -> bytes:
        """The exposition text of one scrape (what GET /metrics answers)."""
        return generate_latest(self.registry)

    def close(self) -> None:
        self._reader.shutdown(wait=False, cancel_futures=True)

    def _read_bounded(self) -> tuple[bool, Reading | None]:
        """(database up, the values to show). Down when the database refused, failed or did
        not answer the read's first probe within the timeout."""
        with self._lock:
            if self._inflight is None or self._inflight.done():
                self._current = Reading()
                self._inflight = self._reader.submit(self._read, self._current)
            inflight, current = self._inflight, self._current
        try:
            return True, inflight.result(timeout=self.timeout)
        except FutureTimeout:
            if current.answered:
                # Slow, not down: the read goes on, and this scrape shows the last one.
                log.warning("exporter.read_slow", waited_seconds=self.timeout)
                last = self._last
                fresh = last is not None and time.monotonic() - last.finished < STALE_AFTER
                return True, last if fresh else None
            # Still answer: the up-gauge at 0 is what lets the alert fire.
            log.warning("exporter.database_timeout", waited_seconds=self.timeout)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("exporter.database_down", error=str(exc)[:300])
        return False, None

    def _read(self, reading: Reading) -> Reading:
        with Session(self.engine) as session:
            session.execute(select(1))
            reading.answered = True
            now = self.now()
            self._payments(session, now, reading)
            self._providers(session, now, reading)
            self._today(session, now, reading)
        reading.finished = time.monotonic()
        self._last = reading  # what a later scrape shows while the next read is slow
        return reading

    def _payments(self, session: Session, now: datetime, out: Reading) -> None:
        # Every provider and status is a series, zero when there is none: a panel shows 0,
        # and a first failure is a change Prometheus sees rather than a series appearing.
        counts = {(p, s.value): 0.0 for p in PROVIDER_CODES for s in PaymentStatus}
        since = now - self.payments_window
        for provider, status, count in session.execute(
                select(Payment.provider_code, Payment.status, func.count())
                .where(Payment.provider_code.in_(PROVIDER_CODES), Payment.created_at >= since)
                .group_by(Payment.provider_code, Payment.status)):
            counts[(provider, status)] = float(count)
        for labels, count in counts.items():
            out.add(m.PAYMENTS_TOTAL, labels, count)
        # Waiting for an answer: the counts the writes keep (a few dozen rows, whatever the
        # queue's length), and the oldest of each status and provider read off the end of
        # the (status, provider, created_at) index.
        pending = dict.fromkeys(PROVIDER_CODES, 0.0)
        for provider, count in session.execute(
                select(LiveCount.label_a, func.sum(LiveCount.n))
                .where(LiveCount.kind == "waiting", LiveCount.label_b.in_(WAITING))
                .group_by(LiveCount.label_a)):
            if provider in pending:
                pending[provider] = float(count)
        for provider, count in pending.items():
            out.add(m.PENDING_VERIFICATIONS, (provider,), count)
        oldest = session.execute(
            select(func.min(Payment.created_at))
            .where(Payment.status.in_(WAITING))
            .group_by(Payment.status, Payment.provider_code)).scalars().all()
        first = min(oldest, default=None)
        out.add(m.PENDING_OLDEST_AGE, (), (now - first).total_seconds() if first else 0.0)
        for issue_type, count in open_issue_counts(session).items():
            out.add(m.RECONCILIATION_ISSUES, (issue_type,), float(count))

    def _providers(self, session: Session, now: datetime, out: Reading) -> None:
        for window, span in WINDOWS.items():
            since = now - span
            created = dict.fromkeys(PROVIDER_CODES, 0.0)
            for provider, count in session.execute(
                    select(Payment.provider_code, func.count())
                    .where(Payment.provider_code.in_(PROVIDER_CODES), Payment.created_at >= since)
                    .group_by(Payment.provider_code)):
                created[provider] = float(count)
            for provider, count in created.items():
                out.add(m.PROVIDER_TRANSACTIONS, (provider, window), count)
            calls = dict.fromkeys(ELECTRONIC, 0.0)
            answered = case((PaymentAttempt.outcome.in_(ANSWERED_VALUES), 1), else_=0)
            for provider, count, good, latency in session.execute(
                    select(PaymentAttempt.provider_code, func.count(), func.sum(answered),
                           func.avg(PaymentAttempt.latency_ms))
                    .where(PaymentAttempt.provider_code.in_(ELECTRONIC),
                           PaymentAttempt.created_at >= since)
                    .group_by(PaymentAttempt.provider_code)):
                calls[provider] = float(count)
                out.add(m.PROVIDER_SUCCESS_RATIO, (provider, window), float(good or 0) / count)
                out.add(m.PROVIDER_RESPONSE_AVG, (provider, window), float(latency or 0) / 1000)
            for provider, count in calls.items():
                out.add(m.PROVIDER_CALLS, (provider, window), count)
        since = now - UP_WINDOW
        for provider in ELECTRONIC:
            latest = list(session.scalars(
                select(PaymentAttempt.outcome)
                .where(PaymentAttempt.provider_code == provider,
                       PaymentAttempt.created_at >= since)
                .order_by(PaymentAttempt.created_at.desc(), PaymentAttempt.id.desc())
                .limit(DOWN_AFTER)))
            down = len(latest) == DOWN_AFTER and not set(latest) & set(ANSWERED_VALUES)
            out.add(m.PROVIDER_UP, (provider,), 0.0 if down else 1.0)

    def _today(self, session: Session, now: datetime, out: Reading) -> None:
        midnight = _local_midnight_utc(now, self.zone)
        # Zero for every provider and currency it takes, so the revenue panels show 0.
        gross = {(p.code, c): 0.0 for p in PROVIDERS for c in p.currencies}
        fees = dict(gross)
        refunds = dict(gross)
        for provider, currency, amount, fee in session.execute(
                select(Payment.provider_code, Payment.currency, func.sum(Payment.amount),
                       func.sum(Payment.total_fees))
                .where(Payment.completed_at >= midnight,
                       Payment.status.in_([s.value for s in SETTLED | {S.REFUNDED}]))
                .group_by(Payment.provider_code, Payment.currency)):
            gross[(provider, currency)] = float(amount or 0)
            fees[(provider, currency)] = float(fee or 0)
        for provider, currency, refunded in session.execute(
                select(Payment.provider_code, Payment.currency, func.sum(PaymentRefund.amount))
                .join(Payment, Payment.id == PaymentRefund.payment_id)
                .where(PaymentRefund.status == "completed",
                       PaymentRefund.completed_at >= midnight)
                .group_by(Payment.provider_code, Payment.currency)):
            refunds[(provider, currency)] = float(refunded or 0)
        for spec, values in ((m.REVENUE_TODAY, gross), (m.FEES_TODAY, fees),
                             (m.REFUNDS_TODAY, refunds)):
            for labels, value in values.items():
                out.add(spec, labels, value)


def _local_midnight_utc(now_utc: datetime, zone: Any) -> datetime:
    local = now_utc.replace(tzinfo=UTC).astimezone(zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.astimezone(UTC).replace(tzinfo=None)
