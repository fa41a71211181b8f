"""The metrics exporter: business gauges read from the database at scrape time, served on
its own small HTTP server (`/metrics`, `/health`).

Every query is bounded: an indexed status range (open payments, open issues), or an
indexed time window (attempts and payments by provider and created_at, settled payments
by completed_at, refunds by status and completed_at), so a scrape costs about the same
with ten thousand rows as with a million. The payments reads are answered from covering
indexes alone (migration 0002); bench/exporter_scrape.py measures it and
tests/integration/workers/test_exporter_plans.py guards the plans.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy import Engine, case, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from service import metrics as m
from service.clock import utcnow
from service.db.models import Payment, PaymentAttempt, PaymentRefund
from service.domain.catalog import BY_CODE, PROVIDERS
from service.domain.status import SETTLED, PaymentStatus
from service.workers.reconciliation import open_issue_counts

log = structlog.get_logger()
S = PaymentStatus
WINDOWS: dict[str, timedelta] = {"5m": timedelta(minutes=5), "1h": timedelta(hours=1)}
# The window the up/down signal looks at: long enough to hold a few calls, short enough
# that the alert fires within the critical response target.
UP_WINDOW = timedelta(minutes=5)
WAITING = [S.AWAITING_VERIFICATION.value, S.PROCESSING.value, S.UNKNOWN.value]
PROVIDER_CODES = [p.code for p in PROVIDERS]
# Calls where the provider answered: a decline is a working provider saying no.
ANSWERED = ("success", "pending", "declined")


class ExporterMetrics:
    """The exporter's gauges, built from the exporter specs in service.metrics."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.database_up = m.gauge(m.DATABASE_UP, registry)
        self.scrape_duration = m.gauge(m.SCRAPE_DURATION, registry)
        self.payments = m.gauge(m.PAYMENTS_TOTAL, registry)
        self.pending = m.gauge(m.PENDING_VERIFICATIONS, registry)
        self.pending_oldest = m.gauge(m.PENDING_OLDEST_AGE, registry)
        self.issues = m.gauge(m.RECONCILIATION_ISSUES, registry)
        self.success_ratio = m.gauge(m.PROVIDER_SUCCESS_RATIO, registry)
        self.response_avg = m.gauge(m.PROVIDER_RESPONSE_AVG, registry)
        self.transactions = m.gauge(m.PROVIDER_TRANSACTIONS, registry)
        self.calls = m.gauge(m.PROVIDER_CALLS, registry)
        self.provider_up = m.gauge(m.PROVIDER_UP, registry)
        self.revenue = m.gauge(m.REVENUE_TODAY, registry)
        self.fees = m.gauge(m.FEES_TODAY, registry)
        self.refunds = m.gauge(m.REFUNDS_TODAY, registry)
        self._business = (self.payments, self.pending, self.pending_oldest, self.issues,
                          self.success_ratio, self.response_avg, self.transactions,
                          self.provider_up, self.revenue, self.fees, self.refunds)

    def clear(self) -> None:
        for gauge in self._business:
            gauge.clear()


class Exporter:
    def __init__(self, engine: Engine, zone: Any, registry: CollectorRegistry | None = None,
                 payments_window: timedelta = timedelta(days=1)) -> None:
        self.engine = engine
        self.zone = zone
        self.metrics = ExporterMetrics(registry or CollectorRegistry())
        self.payments_window = payments_window
        self._lock = threading.Lock()

    def scrape(self) -> bytes:
        """Refresh every gauge from the database and render the exposition text."""
        with self._lock:
            started = time.perf_counter()
            try:
                with Session(self.engine) as session:
                    self._refresh(session, utcnow())
                self.metrics.database_up.set(1)
            except (SQLAlchemyError, OSError) as exc:
                # Still answer: the up-gauge at 0 is what lets the alert fire.
                log.warning("exporter.database_down", error=str(exc)[:300])
                self.metrics.clear()
                self.metrics.database_up.set(0)
            self.metrics.scrape_duration.set(time.perf_counter() - started)
            return generate_latest(self.metrics.registry)

    def _refresh(self, session: Session, now: datetime) -> None:
        values = list(self._read(session, now))
        g = self.metrics
        g.clear()
        for gauge, labels, value in values:
            (gauge.labels(*labels) if labels else gauge).set(value)

    def _read(self, session: Session, now: datetime) -> Iterator[tuple[Any, tuple[str, ...],
                                                                         float]]:
        g = self.metrics
        # Payments by status over the recent window (indexed by provider and created_at).
        since = now - self.payments_window
        for provider, status, count in session.execute(
                select(Payment.provider_code, Payment.status, func.count())
                .where(Payment.provider_code.in_(PROVIDER_CODES), Payment.created_at >= since)
                .group_by(Payment.provider_code, Payment.status)):
            yield g.payments, (provider, status), float(count)
        # Waiting for verification: a small indexed status range.
        pending = dict.fromkeys(PROVIDER_CODES, 0.0)
        oldest: datetime | None = None
        for provider, count, first in session.execute(
                select(Payment.provider_code, func.count(), func.min(Payment.created_at))
                .where(Payment.status.in_(WAITING)).group_by(Payment.provider_code)):
            pending[provider] = float(count)
            oldest = first if oldest is None or first < oldest else oldest
        for provider, count in pending.items():
            yield g.pending, (provider,), count
        yield g.pending_oldest, (), (now - oldest).total_seconds() if oldest else 0.0
        for issue_type, count in open_issue_counts(session).items():
            yield g.issues, (issue_type,), float(count)
        yield from self._providers(session, now)
        yield from self._today(session, now)

    def _providers(self, session: Session, now: datetime) -> Iterator[tuple[Any, tuple[str, ...],
                                                                            float]]:
        g = self.metrics
        electronic = [code for code, spec in BY_CODE.items() if spec.electronic]
        called: set[str] = set()
        for window, span in WINDOWS.items():
            since = now - span
            created = dict.fromkeys(PROVIDER_CODES, 0.0)
            for provider, count in session.execute(
                    select(Payment.provider_code, func.count())
                    .where(Payment.provider_code.in_(PROVIDER_CODES), Payment.created_at >= since)
                    .group_by(Payment.provider_code)):
                created[provider] = float(count)
            for provider, count in created.items():
                yield g.transactions, (provider, window), count
            answered = case((PaymentAttempt.outcome.in_(ANSWERED), 1), else_=0)
            succeeded = case((PaymentAttempt.outcome.in_(("success", "pending")), 1), else_=0)
            for provider, calls, ok, good, latency in session.execute(
                    select(PaymentAttempt.provider_code, func.count(), func.sum(answered),
                           func.sum(succeeded), func.avg(PaymentAttempt.latency_ms))
                    .where(PaymentAttempt.provider_code.in_(electronic),
                           PaymentAttempt.created_at >= since)
                    .group_by(PaymentAttempt.provider_code)):
                yield g.calls, (provider, window), float(calls)
                yield g.success_ratio, (provider, window), float(good or 0) / calls
                yield g.response_avg, (provider, window), float(latency or 0) / 1000
                if span == UP_WINDOW:
                    yield g.provider_up, (provider,), 1.0 if ok else 0.0
                    called.add(provider)
            if span == UP_WINDOW:
                for provider in set(electronic) - called:  # no calls: nothing says it is down
                    yield g.provider_up, (provider,), 1.0

    def _today(self, session: Session, now: datetime) -> Iterator[tuple[Any, tuple[str, ...],
                                                                        float]]:
        g = self.metrics
        midnight = _local_midnight_utc(now, self.zone)
        refunds: dict[tuple[str, str], float] = {}
        for provider, currency, gross, fees in session.execute(
                select(Payment.provider_code, Payment.currency, func.sum(Payment.amount),
                       func.sum(Payment.total_fees))
                .where(Payment.completed_at >= midnight,
                       Payment.status.in_([s.value for s in SETTLED | {S.REFUNDED}]))
                .group_by(Payment.provider_code, Payment.currency)):
            yield g.revenue, (provider, currency), float(gross or 0)
            yield g.fees, (provider, currency), float(fees or 0)
            refunds.setdefault((provider, currency), 0.0)
        for provider, currency, refunded in session.execute(
                select(Payment.provider_code, Payment.currency, func.sum(PaymentRefund.amount))
                .join(Payment, Payment.id == PaymentRefund.payment_id)
                .where(PaymentRefund.status == "completed",
                       PaymentRefund.completed_at >= midnight)
                .group_by(Payment.provider_code, Payment.currency)):
            refunds[(provider, currency)] = float(refunded or 0)
        # Zero where there was revenue but no refund, so the series exists for the panels.
        for labels, value in refunds.items():
            yield g.refunds, labels, value


def _local_midnight_utc(now_utc: datetime, zone: Any) -> datetime:
    local = now_utc.replace(tzinfo=UTC).astimezone(zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.astimezone(UTC).replace(tzinfo=None)


def serve(exporter: Exporter, host: str, port: int) -> ThreadingHTTPServer:
    """An HTTP server for `/metrics` and `/health` (call serve_forever on it)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, exporter.scrape())
            elif path == "/health":
                self._send(200, "application/json", json.dumps({"status": "ok"}).encode())
            else:
                self._send(404, "application/json", b'{"error": "not found"}')

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return  # scrapes every 15 s would drown the log

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server
