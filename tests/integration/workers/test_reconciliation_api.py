"""The reconciliation API: finance roles list and resolve their own facility's issues;
resolutions are audited; another facility's issues are absent."""

from __future__ import annotations

from litestar.testing import TestClient
from sqlalchemy import insert, select

from service.api.app import create_app
from service.api.auth import mint
from service.clock import utcnow
from service.db.models import PaymentAuditLog, PaymentReconciliation
from service.services.context import Context


def _issue(ctx: Context, facility: str | None, detail: str) -> None:
    with ctx.sessions.begin() as session:
        session.execute(insert(PaymentReconciliation), [{
            "run_id": "run_t", "result": "issue", "issue_type": "missing", "status": "open",
            "facility_id": facility, "detail": detail, "created_at": utcnow()}])


def test_finance_lists_and_resolves_an_issue_with_an_audited_note(ctx: Context) -> None:
    _issue(ctx, "fac-1", "not ours")
    secret = ctx.settings.jwt_secret.get_secret_value()
    finance = {"Authorization": "Bearer " + mint(secret, "fin-1", ["accountant"], "fac-1", 600)}
    nurse = {"Authorization": "Bearer " + mint(secret, "n-1", ["nurse"], "fac-1", 600)}
    with TestClient(create_app(ctx.settings, ctx)) as client:
        assert client.get("/api/v1/reconciliation/issues", headers=nurse).status_code == 403
        items = client.get("/api/v1/reconciliation/issues?type=missing",
                           headers=finance).json()["items"]
        assert [i["type"] for i in items] == ["missing"]
        url = f"/api/v1/reconciliation/issues/{items[0]['id']}/resolve"
        reply = client.post(url, json={"action": "written_off", "note": "bank error"},
                            headers=finance)
        assert reply.status_code == 200 and reply.json()["status"] == "resolved"
        assert client.post(url, json={"action": "written_off", "note": "again"},
                           headers=finance).status_code == 409
        assert client.get("/api/v1/reconciliation/runs/run_t",
                          headers=finance).json()["results"]["open_issues"] == 0

        def listed(status: str) -> list[str]:
            reply = client.get(f"/api/v1/reconciliation/issues?status={status}",
                               headers=finance)
            assert reply.status_code == 200, reply.text
            return [i["status"] for i in reply.json()["items"]]

        assert listed("open") == [] and listed("resolved") == ["resolved"]
        assert listed("all") == ["resolved"]
        assert client.get("/api/v1/reconciliation/issues?status=",
                          headers=finance).json()["field"] == "status"
    with ctx.sessions() as session:
        audit = session.scalars(select(PaymentAuditLog).where(
            PaymentAuditLog.entity_type == "reconciliation")).one()
    assert (audit.actor, audit.note, audit.action) == ("fin-1", "bank error",
                                                       "resolve:written_off")


def test_another_facilitys_issues_are_absent_and_untouchable(ctx: Context) -> None:
    _issue(ctx, "fac-1", "ours")
    _issue(ctx, "fac-2", "theirs")
    _issue(ctx, None, "a bank line of no known facility")
    secret = ctx.settings.jwt_secret.get_secret_value()

    def token(role: str, facility: str | None) -> dict[str, str]:
        return {"Authorization": "Bearer " + mint(secret, f"{role}-{facility}", [role],
                                                  facility, 600)}

    with TestClient(create_app(ctx.settings, ctx)) as client:
        def details(headers: dict[str, str]) -> list[str]:
            reply = client.get("/api/v1/reconciliation/issues", headers=headers)
            return sorted(i["detail"] for i in reply.json()["items"])

        assert details(token("accountant", "fac-1")) == ["ours"]
        assert details(token("accountant", "fac-2")) == ["theirs"]
        assert details(token("accountant", None)) == []
        assert details(token("super_admin", None)) == [
            "a bank line of no known facility", "ours", "theirs"]
        theirs = client.get("/api/v1/reconciliation/issues",
                            headers=token("accountant", "fac-2")).json()["items"][0]
        reply = client.post(f"/api/v1/reconciliation/issues/{theirs['id']}/resolve",
                            json={"action": "accepted", "note": "not mine to judge"},
                            headers=token("accountant", "fac-1"))
        assert reply.status_code == 404 and reply.json()["field"] == "issue_id"
    with ctx.sessions() as session:
        assert session.scalars(select(PaymentReconciliation.status).where(
            PaymentReconciliation.id == theirs["id"])).one() == "open"
        assert session.scalars(select(PaymentAuditLog)).all() == []
