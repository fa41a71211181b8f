"""Reconciliation for finance users: issues, resolutions, run requests."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import ColumnElement, Select, false, select, update

from service.clock import iso
from service.db.models import (
    BankStatement,
    BankStatementLine,
    Payment,
    PaymentAuditLog,
    PaymentReconciliation,
)
from service.domain.caller import Caller, require_finance
from service.domain.money import fmt
from service.domain.views import IssuePage, IssueView, RunView
from service.errors import Conflict, InvalidInput, NotFound
from service.reconciliation import reports, runs
from service.reconciliation.rules import ISSUE_TYPES, Action, IssueFilter
from service.services.context import Context
from service.services.idempotency import Attach, Idempotency, Keyed, Outcome

ACTIONS = tuple(a.value for a in Action)
ISSUE_STATUSES = tuple(f.value for f in IssueFilter if f is not IssueFilter.ALL)
Issue = PaymentReconciliation


class ReconciliationService:
    def __init__(self, ctx: Context, idempotency: Idempotency) -> None:
        self.ctx = ctx
        self.idempotency = idempotency

    def issues(self, caller: Caller, *, status: str | None, issue_type: str | None,
               run_id: str | None, limit: int) -> IssuePage:
        require_finance(caller)
        if issue_type is not None and issue_type not in ISSUE_TYPES:
            raise InvalidInput("type must be one of " + ", ".join(ISSUE_TYPES), field="type")
        if status is not None and status not in (*ISSUE_STATUSES, IssueFilter.ALL):
            raise InvalidInput("status must be one of " + ", ".join(IssueFilter), field="status")
        query = _scoped(_issues(), caller)
        if status and status != IssueFilter.ALL:
            query = query.where(Issue.status == status)
        if issue_type:
            query = query.where(Issue.issue_type == issue_type)
        if run_id:
            query = query.where(Issue.run_id == run_id)
        with self.ctx.sessions() as session:
            rows = session.execute(query.order_by(Issue.id).limit(limit)).all()
        return {"items": [_view(*row) for row in rows]}

    def resolve(self, caller: Caller, issue_id: int, action: str, note: str,
                keyed: Keyed | None) -> Outcome:
        require_finance(caller)
        if action not in ACTIONS:
            raise InvalidInput("action must be one of " + ", ".join(ACTIONS), field="action")

        def resolve(attach: Attach) -> Outcome:
            now = self.ctx.clock.now()
            with self.ctx.sessions.begin() as session:
                issue = session.scalars(
                    _scoped(select(Issue), caller)
                    .where(Issue.id == issue_id, Issue.result == "issue")
                    .with_for_update()).first()
                # Another facility's issue is absent, as its payments are.
                if issue is None:
                    raise NotFound(f"no reconciliation issue {issue_id}", field="issue_id")
                if issue.status != "open":
                    raise Conflict(f"issue {issue_id} is already {issue.status}",
                                   field="issue_id")
                session.execute(update(Issue).where(Issue.id == issue_id).values(
                    status="resolved", resolution_action=action, resolution_note=note,
                    resolved_by=caller.subject, resolved_at=now))
                session.add(PaymentAuditLog(
                    entity_type="reconciliation", entity_id=issue_id, action=f"resolve:{action}",
                    old_value="open", new_value="resolved", actor=caller.subject, note=note,
                    created_at=now))
                attach(session, str(issue_id))
            return Outcome(200, self._issue(caller, issue_id))

        return self.idempotency.run(keyed, resolve,
                                    lambda resource: Outcome(200, self._issue(caller,
                                                                              int(resource))))

    def request_run(self, caller: Caller, keyed: Keyed | None) -> Outcome:
        """Queue a run (or join the one already waiting); the reconciliation worker runs it."""
        require_finance(caller)

        def request(attach: Attach) -> Outcome:
            run_id, _new = runs.request(self.ctx.sessions, caller.subject, attach,
                                        clock=self.ctx.clock)
            return Outcome(202, self._run(caller, run_id))

        return self.idempotency.run(keyed, request,
                                    lambda resource: Outcome(202, self._run(caller, resource)))

    def run(self, caller: Caller, run_id: str) -> RunView:
        require_finance(caller)
        return self._run(caller, run_id)

    def _run(self, caller: Caller, run_id: str) -> RunView:
        """The run, with what it found in the caller's facility (every facility for admins)."""
        with self.ctx.sessions() as session:
            found = runs.view(session, run_id)
            results = reports.summary(session, run_id, *_facility(caller))
        if found is None and results is None:
            raise NotFound(f"no reconciliation run {run_id!r}", field="run_id")
        out: RunView = found or {"run_id": run_id, "status": "completed"}
        out["results"] = results
        return out

    def _issue(self, caller: Caller, issue_id: int) -> IssueView:
        with self.ctx.sessions() as session:
            row = session.execute(_scoped(_issues(), caller).where(Issue.id == issue_id)).first()
        if row is None:
            raise NotFound(f"no reconciliation issue {issue_id}", field="issue_id")
        return _view(*row)


def _issues() -> Select[Any]:
    return (select(Issue, Payment.public_id, BankStatement.bank_code, BankStatementLine.line_no,
                   BankStatementLine.value_date, BankStatementLine.reference)
            .outerjoin(Payment, Payment.id == Issue.payment_id)
            .outerjoin(BankStatementLine, BankStatementLine.id == Issue.statement_line_id)
            .outerjoin(BankStatement, BankStatement.id == BankStatementLine.statement_id)
            .where(Issue.result == "issue"))


def _scoped(query: Select[Any], caller: Caller) -> Select[Any]:
    """Admins see every facility's issues; anyone else their own facility's only."""
    return query.where(*_facility(caller))


def _facility(caller: Caller) -> list[ColumnElement[bool]]:
    if caller.is_admin:
        return []
    if caller.facility_id is None:
        return [false()]
    return [Issue.facility_id == caller.facility_id]


def _view(issue: Issue, payment_id: str | None, bank: str | None, line_no: int | None,
          value_date: Any, reference: str | None) -> IssueView:
    return {
        "id": issue.id,
        "run_id": issue.run_id,
        # Every finding with result "issue" carries its type (the writer sets both).
        "type": cast(str, issue.issue_type),
        "status": issue.status,
        "facility_id": issue.facility_id,
        "payment_id": payment_id,
        "statement_line": None if line_no is None else {
            "bank": bank, "line_no": line_no, "value_date": value_date.isoformat(),
            "reference": reference},
        "expected_amount": fmt(issue.expected_amount) if issue.expected_amount is not None
        else None,
        "actual_amount": fmt(issue.actual_amount) if issue.actual_amount is not None else None,
        "detail": issue.detail,
        "resolution_action": issue.resolution_action,
        "resolution_note": issue.resolution_note,
        "resolved_by": issue.resolved_by,
        "resolved_at": iso(issue.resolved_at) if issue.resolved_at else None,
    }
