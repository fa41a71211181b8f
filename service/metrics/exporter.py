"""The exporter's families: business state read from the database at scrape time."""

from __future__ import annotations

from service.metrics.spec import MetricSpec

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
