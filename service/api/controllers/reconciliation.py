"""The reconciliation API for finance roles: issues, resolutions (audited), runs."""

from __future__ import annotations

from typing import Annotated

from anyio import to_thread
from litestar import Controller, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody, Parameter, QueryParameter

from service.api.contract import AUTHENTICATED, BODY, CALLER, KEYED, errors
from service.api.deps import provide_caller, provide_keyed, respond, services_of
from service.api.guards import database_answers
from service.api.schemas import Resolve
from service.domain.caller import Caller
from service.domain.views import IssuePage, IssueView, RunView
from service.reconciliation.rules import Issue as IssueType
from service.reconciliation.rules import IssueFilter
from service.services.idempotency import Keyed


class ReconciliationController(Controller):
    path = "/api/v1/reconciliation"
    tags = ["reconciliation"]
    dependencies = {"caller": Provide(provide_caller, sync_to_thread=False),
                    "keyed": Provide(provide_keyed, sync_to_thread=False)}
    middleware = [database_answers]
    security = AUTHENTICATED

    @get("/issues", summary="List your facility's reconciliation issues",
         responses=errors(CALLER, 400, 403, 422))
    async def list_issues(
        self,
        caller: NamedDependency[Caller],
        state: State,
        status: Annotated[IssueFilter, QueryParameter(
            name="status", description="open (the default), resolved or all")] = IssueFilter.OPEN,
        # Named as on the wire: a validation error names the parameter.
        type: Annotated[IssueType | None, QueryParameter()] = None,
        run_id: Annotated[str | None, QueryParameter(name="run_id", max_length=40)] = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
    ) -> IssuePage:
        services = services_of(state)
        return await to_thread.run_sync(lambda: services.reconciliation.issues(
            caller, status=status, issue_type=type, run_id=run_id, limit=limit))

    @post("/issues/{issue_id:int}/resolve", summary="Resolve an issue (audited)", status_code=200,
          responses=errors(CALLER, BODY, KEYED, 403, 404))
    async def resolve(
        self,
        issue_id: FromPath[int],
        data: JSONBody[Resolve],
        caller: NamedDependency[Caller],
        keyed: NamedDependency[Keyed | None],
        state: State,
    ) -> Response[IssueView]:
        services = services_of(state)
        outcome = await to_thread.run_sync(
            services.reconciliation.resolve, caller, issue_id, data.action, data.note, keyed)
        return respond(outcome)

    @post("/runs", summary="Request a reconciliation run (the reconciliation worker runs it)",
          status_code=202, responses=errors(CALLER, BODY, KEYED, 403))
    async def request_run(
        self,
        caller: NamedDependency[Caller],
        keyed: NamedDependency[Keyed | None],
        state: State,
    ) -> Response[RunView]:
        services = services_of(state)
        outcome = await to_thread.run_sync(services.reconciliation.request_run, caller, keyed)
        return respond(outcome)

    @get("/runs/{run_id:str}", summary="A run: its state and what it found",
         responses=errors(CALLER, 403, 404))
    async def run_summary(
        self,
        run_id: FromPath[str],
        caller: NamedDependency[Caller],
        state: State,
    ) -> RunView:
        services = services_of(state)
        return await to_thread.run_sync(services.reconciliation.run, caller, run_id)
