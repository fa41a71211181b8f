"""The reconciliation API for finance roles: issues, resolutions (audited), runs."""

from __future__ import annotations

from typing import Annotated, Any

from anyio import to_thread
from litestar import Controller, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody, Parameter, QueryParameter
from pydantic import BaseModel, ConfigDict, Field

from service.api.deps import Services, provide_caller, provide_keyed
from service.api.guards import database_answers
from service.domain.caller import Caller
from service.reconciliation.service import ACTIONS
from service.services.idempotency import Keyed


class Resolve(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: str = Field(description="One of: " + ", ".join(ACTIONS))
    note: str = Field(min_length=1, max_length=1000)


class ReconciliationController(Controller):
    path = "/api/v1/reconciliation"
    tags = ["reconciliation"]
    dependencies = {"caller": Provide(provide_caller, sync_to_thread=False),
                    "keyed": Provide(provide_keyed, sync_to_thread=False)}
    guards = [database_answers]

    @get("/issues", summary="List your facility's reconciliation issues")
    async def list_issues(
        self,
        caller: NamedDependency[Caller],
        services: NamedDependency[Services],
        status: Annotated[str | None, QueryParameter(name="status")] = "open",
        issue_type: Annotated[str | None, QueryParameter(name="type")] = None,
        run_id: Annotated[str | None, QueryParameter(name="run_id", max_length=40)] = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
    ) -> dict[str, Any]:
        return await to_thread.run_sync(lambda: services.reconciliation.issues(
            caller, status=status, issue_type=issue_type, run_id=run_id, limit=limit))

    @post("/issues/{issue_id:int}/resolve", summary="Resolve an issue (audited)")
    async def resolve(
        self,
        issue_id: FromPath[int],
        data: JSONBody[Resolve],
        caller: NamedDependency[Caller],
        keyed: NamedDependency[Keyed | None],
        services: NamedDependency[Services],
    ) -> Response[dict[str, Any]]:
        outcome = await to_thread.run_sync(
            services.reconciliation.resolve, caller, issue_id, data.action, data.note, keyed)
        return Response(outcome.body, status_code=outcome.status)

    @post("/runs", summary="Request a reconciliation run (the reconciliation worker runs it)")
    async def request_run(
        self,
        caller: NamedDependency[Caller],
        keyed: NamedDependency[Keyed | None],
        services: NamedDependency[Services],
    ) -> Response[dict[str, Any]]:
        outcome = await to_thread.run_sync(services.reconciliation.request_run, caller, keyed)
        return Response(outcome.body, status_code=outcome.status)

    @get("/runs/{run_id:str}", summary="A run: its state and what it found")
    async def run_summary(
        self,
        run_id: FromPath[str],
        caller: NamedDependency[Caller],
        services: NamedDependency[Services],
    ) -> dict[str, Any]:
        return await to_thread.run_sync(services.reconciliation.run, caller, run_id)
