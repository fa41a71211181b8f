"""What the API shows: the shape of every response body, as TypedDicts.

The services build these plain dicts (no per-response object to construct on the hot path);
mypy holds each builder to its shape, and the OpenAPI document is generated from the same
types, so the published contract and what a client receives cannot part.
"""

from typing import Literal, NotRequired, TypedDict

from service.domain.status import PaymentStatus


class PaymentView(TypedDict):
    id: str
    reference: str
    provider: str
    status: PaymentStatus
    amount: str
    currency: str
    fees: str
    net_amount: str
    refunded_amount: str
    facility_id: str
    patient_id: str
    invoice_id: str | None
    payer_phone: str | None
    description: str | None
    provider_reference: str | None
    failure_reason: str | None
    created_at: str
    updated_at: str
    completed_at: str | None


class PaymentPage(TypedDict):
    items: list[PaymentView]
    next_cursor: str | None


RefundStatus = Literal["pending", "completed", "failed"]


class RefundView(TypedDict):
    id: str
    payment_id: str
    amount: str
    currency: str
    status: RefundStatus
    reason: str | None
    payment: PaymentView


class WebhookReceipt(TypedDict):
    received: bool
    duplicate: bool
    matched: NotRequired[bool]


class Fees(TypedDict):
    percent: str
    fixed: str
    min: str
    max: str | None


class Limits(TypedDict):
    min: str
    max: str


class ProviderView(TypedDict):
    name: str
    display_name: str
    type: str
    currencies: list[str]
    fees: Fees
    limits: Limits
    verification: str
    active: bool


class ProviderList(TypedDict):
    providers: list[ProviderView]


class StatementLineRef(TypedDict):
    bank: str | None
    line_no: int
    value_date: str
    reference: str | None


class IssueView(TypedDict):
    id: int
    run_id: str
    type: str
    status: str
    facility_id: str | None
    payment_id: str | None
    statement_line: StatementLineRef | None
    expected_amount: str | None
    actual_amount: str | None
    detail: str | None
    resolution_action: str | None
    resolution_note: str | None
    resolved_by: str | None
    resolved_at: str | None


class IssuePage(TypedDict):
    items: list[IssueView]


class RunResults(TypedDict):
    """What a run found in the caller's facility: matches, and issues by type and status."""

    run_id: str
    started_at: str
    matched: int
    issues: dict[str, dict[str, int]]
    open_issues: int


class RunView(TypedDict):
    """A reconciliation run. Findings whose run record is gone show `run_id`, `status` and
    `results` only."""

    run_id: str
    status: str
    requested_by: NotRequired[str]
    requested_at: NotRequired[str]
    started_at: NotRequired[str | None]
    finished_at: NotRequired[str | None]
    statements: NotRequired[int]
    lines: NotRequired[int]
    matched: NotRequired[int]
    issues_found: NotRequired[dict[str, int]]
    error: NotRequired[str | None]
    results: NotRequired[RunResults | None]


class Health(TypedDict):
    status: Literal["ok"]


class Readiness(TypedDict):
    status: Literal["ready", "degraded"]
    checks: dict[str, str]
