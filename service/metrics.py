"""Every Prometheus metric the service exposes, declared once and bound to a registry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Histogram

from service.domain import catalog
from service.domain.status import SUCCESSFUL, UNSUCCESSFUL, PaymentStatus
from service.providers.outcome import OPERATIONS, CallOutcome
from service.reconciliation.rules import ISSUE_TYPES

Kind = Literal["counter", "gauge", "histogram"]
# "events" are counted where they happen (gateway, payment worker, reconciliation worker) and
# scraped from each of them; "exporter" families are business state read from the database.
Process = Literal["events", "exporter"]

# Processing and provider calls range from tens of milliseconds (wallets) to minutes
# (a payment waiting on a bank), so the buckets span both.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
PROCESSING_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)


@dataclass(frozen=True)
class MetricSpec:
    """One metric family: name (counters without `_total`), kind, labels, owning process."""

    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    process: Process = "events"

    @property
    def series(self) -> tuple[str, ...]:
        """The sample names this family puts on the wire."""
        if self.kind == "counter":
            return (f"{self.name}_total",)
        if self.kind == "histogram":
            return (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")
        return (self.name,)


# --- events: counted where they happen, by every process that makes them ----------------
HTTP_REQUESTS = MetricSpec(
    "nilecare_http_requests", "counter", "HTTP requests served.", ("method", "route", "status")
)
HTTP_DURATION = MetricSpec(
    "nilecare_http_request_duration_seconds",
    "histogram",
    "HTTP request latency.",
    ("method", "route"),
)
PAYMENTS_CREATED = MetricSpec(
    "nilecare_payments_created", "counter", "Payments created.", ("provider", "currency")
)
PAYMENTS_COMPLETED = MetricSpec(
    "nilecare_payments_completed",
    "counter",
    "Payments that reached a terminal or settled status.",
    ("provider", "status"),
)
PROCESSING_DURATION = MetricSpec(
    "nilecare_payment_processing_duration_seconds",
    "histogram",
    "Time from creation to a terminal status.",
    ("provider",),
)
PROVIDER_REQUESTS = MetricSpec(
    "nilecare_provider_requests",
    "counter",
    "Calls to payment providers by outcome (success, pending, declined, refused, error, "
    "timeout, integrity_error).",
    ("provider", "operation", "outcome"),
)
PROVIDER_DURATION = MetricSpec(
    "nilecare_provider_request_duration_seconds",
    "histogram",
    "Latency of calls to payment providers.",
    ("provider", "operation"),
)
WEBHOOKS = MetricSpec(
    "nilecare_webhooks_received",
    "counter",
    "Provider webhooks received by result (accepted, duplicate, rejected: signed but not "
    "an event we can act on, or not signed).",
    ("provider", "result"),
)
IDEMPOTENCY = MetricSpec(
    "nilecare_idempotency_requests",
    "counter",
    "POSTs carrying an Idempotency-Key by decision (new, replayed, conflict, mismatch, "
    "recover: a retry that took over from a request whose gateway died).",
    ("decision",),
)
RATE_LIMIT_FALLBACK = MetricSpec(
    "nilecare_rate_limit_fallback",
    "counter",
    "Rate-limit decisions taken on the gateway's local count because Redis did not answer.",
)
DATABASE_UNAVAILABLE = MetricSpec(
    "nilecare_database_unavailable",
    "counter",
    "Requests answered 503 (gateway) or work loops skipped (workers) because the database "
    "refused, failed or hung.",
)
LEASES_LOST = MetricSpec(
    "nilecare_worker_leases_lost",
    "counter",
    "Provider answers a worker did not apply because its lease on the payment or refund had "
    "passed to another worker.",
)
RECONCILIATION_RUNS = MetricSpec(
    "nilecare_reconciliation_runs", "counter", "Reconciliation runs by result (completed, failed).",
    ("result",),
)
RECONCILIATION_LINES = MetricSpec(
    "nilecare_reconciliation_lines", "counter", "Bank statement lines a run judged.",
)
RECONCILIATION_FOUND = MetricSpec(
    "nilecare_reconciliation_issues_found",
    "counter",
    "Discrepancies reconciliation runs recorded, by type.",
    ("type",),
)

# --- exporter: business state read from the database at scrape time ---------------------
DATABASE_UP = MetricSpec(
    "nilecare_database_up",
    "gauge",
    "1 when the exporter could query the database.",
    process="exporter",
)
SCRAPE_DURATION = MetricSpec(
    "nilecare_exporter_scrape_duration_seconds",
    "gauge",
    "Time the exporter spent reading the database for this scrape.",
    process="exporter",
)
PAYMENTS_TOTAL = MetricSpec(
    "nilecare_payments",
    "gauge",
    "Payments created in the last 24 hours by provider and status.",
    ("provider", "status"),
    process="exporter",
)
PENDING_VERIFICATIONS = MetricSpec(
    "nilecare_pending_verifications",
    "gauge",
    "Payments waiting for verification (awaiting_verification, processing, unknown).",
    ("provider",),
    process="exporter",
)
PENDING_OLDEST_AGE = MetricSpec(
    "nilecare_pending_verification_oldest_age_seconds",
    "gauge",
    "Age of the oldest payment waiting for verification.",
    process="exporter",
)
RECONCILIATION_ISSUES = MetricSpec(
    "nilecare_reconciliation_unresolved_issues",
    "gauge",
    "Unresolved reconciliation issues by type.",
    ("type",),
    process="exporter",
)
PROVIDER_SUCCESS_RATIO = MetricSpec(
    "nilecare_provider_success_ratio",
    "gauge",
    "Share (0-1) of provider calls the provider answered in the window (declines count as "
    "answers; transport errors, timeouts and 5xx do not).",
    ("provider", "window"),
    process="exporter",
)
PROVIDER_RESPONSE_AVG = MetricSpec(
    "nilecare_provider_response_time_avg_seconds",
    "gauge",
    "Mean provider call latency in the window.",
    ("provider", "window"),
    process="exporter",
)
PROVIDER_TRANSACTIONS = MetricSpec(
    "nilecare_provider_transactions",
    "gauge",
    "Payments created in the window.",
    ("provider", "window"),
    process="exporter",
)
PROVIDER_CALLS = MetricSpec(
    "nilecare_provider_calls",
    "gauge",
    "Calls made to the provider in the window (the volume behind its success ratio).",
    ("provider", "window"),
    process="exporter",
)
PROVIDER_UP = MetricSpec(
    "nilecare_provider_up",
    "gauge",
    "0 when the provider's last calls all went unanswered (transport error, timeout, 5xx).",
    ("provider",),
    process="exporter",
)
REVENUE_TODAY = MetricSpec(
    "nilecare_revenue_today",
    "gauge",
    "Gross amount of settled payments today (local day).",
    ("provider", "currency"),
    process="exporter",
)
FEES_TODAY = MetricSpec(
    "nilecare_fees_today",
    "gauge",
    "Fees of settled payments today (local day).",
    ("provider", "currency"),
    process="exporter",
)
REFUNDS_TODAY = MetricSpec(
    "nilecare_refunds_today",
    "gauge",
    "Completed refunds today (local day).",
    ("provider", "currency"),
    process="exporter",
)

ALL: tuple[MetricSpec, ...] = (
    HTTP_REQUESTS,
    HTTP_DURATION,
    PAYMENTS_CREATED,
    PAYMENTS_COMPLETED,
    PROCESSING_DURATION,
    PROVIDER_REQUESTS,
    PROVIDER_DURATION,
    WEBHOOKS,
    IDEMPOTENCY,
    RATE_LIMIT_FALLBACK,
    DATABASE_UNAVAILABLE,
    LEASES_LOST,
    RECONCILIATION_RUNS,
    RECONCILIATION_LINES,
    RECONCILIATION_FOUND,
    DATABASE_UP,
    SCRAPE_DURATION,
    PAYMENTS_TOTAL,
    PENDING_VERIFICATIONS,
    PENDING_OLDEST_AGE,
    RECONCILIATION_ISSUES,
    PROVIDER_SUCCESS_RATIO,
    PROVIDER_RESPONSE_AVG,
    PROVIDER_TRANSACTIONS,
    PROVIDER_CALLS,
    PROVIDER_UP,
    REVENUE_TODAY,
    FEES_TODAY,
    REFUNDS_TODAY,
)


def exposed_series() -> frozenset[str]:
    """Every sample name the service can put on the wire (what rules and panels may query)."""
    return frozenset(s for spec in ALL for s in spec.series)


# Statuses a payment is counted as completed in; every one of them exists as a series from
# the start, so a first failure is a step from 0 that rate() sees, not a new series it misses.
COMPLETED_STATUSES = tuple(sorted(SUCCESSFUL | UNSUCCESSFUL | {PaymentStatus.CANCELLED}))
WEBHOOK_RESULTS = ("accepted", "duplicate", "rejected")
IDEMPOTENCY_DECISIONS = ("new", "replayed", "conflict", "mismatch", "recover")


class EventMetrics:
    """The event counters of one process (gateway, payment worker or reconciliation worker),
    registered on `registry`, with every provider's series present from the first scrape."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.http_requests = _counter(HTTP_REQUESTS, registry)
        self.http_duration = _histogram(HTTP_DURATION, registry, LATENCY_BUCKETS)
        self.payments_created = _counter(PAYMENTS_CREATED, registry)
        self.payments_completed = _counter(PAYMENTS_COMPLETED, registry)
        self.processing_duration = _histogram(PROCESSING_DURATION, registry, PROCESSING_BUCKETS)
        self.provider_requests = _counter(PROVIDER_REQUESTS, registry)
        self.provider_duration = _histogram(PROVIDER_DURATION, registry, LATENCY_BUCKETS)
        self.webhooks = _counter(WEBHOOKS, registry)
        self.idempotency = _counter(IDEMPOTENCY, registry)
        self.rate_limit_fallback = _counter(RATE_LIMIT_FALLBACK, registry)
        self.database_unavailable = _counter(DATABASE_UNAVAILABLE, registry)
        self.leases_lost = _counter(LEASES_LOST, registry)
        self.reconciliation_runs = _counter(RECONCILIATION_RUNS, registry)
        self.reconciliation_lines = _counter(RECONCILIATION_LINES, registry)
        self.reconciliation_found = _counter(RECONCILIATION_FOUND, registry)
        self._initialise()

    def _initialise(self) -> None:
        for spec in catalog.PROVIDERS:
            for currency in spec.currencies:
                self.payments_created.labels(spec.code, currency)
            for status in COMPLETED_STATUSES:
                self.payments_completed.labels(spec.code, status.value)
            if spec.electronic:
                for operation in OPERATIONS:
                    for outcome in CallOutcome:
                        self.provider_requests.labels(spec.code, operation, outcome.value)
                for result in WEBHOOK_RESULTS:
                    self.webhooks.labels(spec.code, result)
        for decision in IDEMPOTENCY_DECISIONS:
            self.idempotency.labels(decision)
        for result in ("completed", "failed"):
            self.reconciliation_runs.labels(result)
        for issue_type in ISSUE_TYPES:
            self.reconciliation_found.labels(issue_type)


def _counter(spec: MetricSpec, registry: CollectorRegistry) -> Counter:
    return Counter(spec.name, spec.help, spec.labels, registry=registry)


def _histogram(
    spec: MetricSpec, registry: CollectorRegistry, buckets: tuple[float, ...]
) -> Histogram:
    return Histogram(spec.name, spec.help, spec.labels, registry=registry, buckets=buckets)
