"""The event families, counted where they happen, and their counters on one registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from service.domain import catalog
from service.domain.status import SUCCESSFUL, UNSUCCESSFUL, PaymentStatus
from service.metrics.spec import MetricSpec
from service.providers.outcome import OPERATIONS, CallOutcome
from service.reconciliation.rules import ISSUE_TYPES

# Processing and provider calls range from tens of milliseconds (wallets) to minutes
# (a payment waiting on a bank), so the buckets span both.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
PROCESSING_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)

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
