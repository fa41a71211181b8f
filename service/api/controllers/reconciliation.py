"""The reconciliation API for finance roles: issues, resolutions (audited), runs."""

from __future__ import annotations

import threading
from typing import Annotated, Any

from anyio import to_thread
from litestar import Controller, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody, Parameter, QueryParameter
from pydantic import BaseModel, Field
from sqlalchemy import select, update

from service.api.deps import Services, provide_caller
from service.clock import utcnow
from service.db.models import PaymentAuditLog, PaymentReconciliation
from service.domain.caller import Caller, require_finance
from service.domain.reconciliation import ISSUE_TYPES
from service.errors import Conflict, InvalidInput, NotFound
from service.workers import reconciliation, statements

ACTIONS = ("accepted", "adjusted", "refunded", "written_off", "false_positive")


class Resolve(BaseModel):
    action: str = Field(description="One of: " + ", ".join(ACTIONS))
    note: str = Field(min_length=1, max_length=1000)


def _view(r: PaymentReconciliation) -> dict[str, Any]:
    return {
        "id": r.id,
        "run_id": r.run_id,
        "type": r.issue_type,
        "status": r.status,
        "payment_id": r.payment_id,
        "statement_line_id": r.statement_line_id,
        "expected_amount": str(r.expected_amount) if r.expected_amount is not None else None,
        "actual_amount": str(r.actual_amount) if r.actual_amount is not None else None,
        "detail": r.detail,
        "resolution_action": r.resolution_action,
        "resolution_note": r.resolution_note,
        "resolved_by": r.resolved_by,
    }


class ReconciliationController(Controller):
    path = "/api/v1/reconciliation"
    tags = ["reconciliation"]
    dependencies = {"caller": Provide(provide_caller, sync_to_thread=False)}

    @get("/issues", summary="List reconciliation issues", sync_to_thread=True)
    def list_issues(
        self,
        caller: NamedDependency[Caller],
        services: NamedDependency[Services],
        status: Annotated[str | None, QueryParameter(name="status")] = "open",
        issue_type: Annotated[str | None, QueryParameter(name="type")] = None,
        run_id: Annotated[str | None, QueryParameter(name="run_id")] = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
    ) -> dict[str, Any]:
        require_finance(caller)
        if issue_type is not None and issue_type not in ISSUE_TYPES:
            raise InvalidInput("type must be one of " + ", ".join(ISSUE_TYPES), field="type")
        query = select(PaymentReconciliation).where(PaymentReconciliation.result == "issue")
        if status:
            query = query.where(PaymentReconciliation.status == status)
        if issue_type:
            query = query.where(PaymentReconciliation.issue_type == issue_type)
        if run_id:
            query = query.where(PaymentReconciliation.run_id == run_id)
        with services.ctx.sessions() as session:
            rows = session.scalars(query.order_by(PaymentReconciliation.id).limit(limit))
            return {"items": [_view(r) for r in rows]}

    @post(
        "/issues/{issue_id:int}/resolve",
        summary="Resolve an issue (audited)",
        status_code=200,
        sync_to_thread=True,
    )
    def resolve(
        self,
        issue_id: FromPath[int],
        data: JSONBody[Resolve],
        caller: NamedDependency[Caller],
        services: NamedDependency[Services],
    ) -> dict[str, Any]:
        require_finance(caller)
        if data.action not in ACTIONS:
            raise InvalidInput("action must be one of " + ", ".join(ACTIONS), field="action")
        now = utcnow()
        with services.ctx.sessions.begin() as session:
            issue = session.scalars(
                select(PaymentReconciliation)
                .where(
                    PaymentReconciliation.id == issue_id, PaymentReconciliation.result == "issue"
                )
                .with_for_update()
            ).first()
            if issue is None:
                raise NotFound(f"no reconciliation issue {issue_id}", field="issue_id")
            if issue.status != "open":
                raise Conflict(f"issue {issue_id} is already {issue.status}", field="issue_id")
            session.execute(
                update(PaymentReconciliation)
                .where(PaymentReconciliation.id == issue_id)
                .values(
                    status="resolved",
                    resolution_action=data.action,
                    resolution_note=data.note,
                    resolved_by=caller.subject,
                    resolved_at=now,
                )
            )
            session.add(
                PaymentAuditLog(
                    entity_type="reconciliation",
                    entity_id=issue_id,
                    action=f"resolve:{data.action}",
                    old_value="open",
                    new_value="resolved",
                    actor=caller.subject,
                    note=data.note,
                    created_at=now,
                )
            )
        with services.ctx.sessions() as session:
            found = session.get(PaymentReconciliation, issue_id)
            assert found is not None
            return _view(found)

    @post("/runs", summary="Start a reconciliation run now", status_code=202)
    async def start_run(
        self, caller: NamedDependency[Caller], services: NamedDependency[Services]
    ) -> Response[dict[str, Any]]:
        require_finance(caller)
        run_id = reconciliation.new_run_id()
        ctx = services.ctx
        thread = threading.Thread(
            target=reconciliation.run,
            args=(ctx.sessions, statements.inbox_for(ctx.settings)),
            kwargs={"run_id": run_id, "metrics": ctx.metrics},
            daemon=True,
            name=f"reconcile-{run_id}",
        )
        thread.start()
        return Response({"run_id": run_id, "status": "started"}, status_code=202)

    @get("/runs/{run_id:str}", summary="A run's summary")
    async def run_summary(
        self,
        run_id: FromPath[str],
        caller: NamedDependency[Caller],
        services: NamedDependency[Services],
    ) -> dict[str, Any]:
        require_finance(caller)

        def read() -> dict[str, Any] | None:
            with services.ctx.sessions() as session:
                return reconciliation.summary(session, run_id)

        found = await to_thread.run_sync(read)
        if found is None:
            raise NotFound(f"no results for run {run_id!r} (yet)", field="run_id")
        return found
