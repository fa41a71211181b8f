"""The reconciliation API: finance roles list and resolve issues; resolutions are audited."""

from __future__ import annotations

from litestar.testing import TestClient
from sqlalchemy import insert, select

from service.api.app import create_app
from service.api.auth import mint
from service.clock import utcnow
from service.db.models import PaymentAuditLog, PaymentReconciliation
from service.services.context import Context


def test_finance_lists_and_resolves_an_issue_with_an_audited_note(ctx: Context) -> None:
    with ctx.sessions.begin() as session:
        session.execute(insert(PaymentReconciliation), [{
            "run_id": "run_t", "result": "issue", "issue_type": "missing", "status": "open",
            "detail": "not ours", "created_at": utcnow()}])
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
                          headers=finance).json()["open_issues"] == 0
    with ctx.sessions() as session:
        audit = session.scalars(select(PaymentAuditLog).where(
            PaymentAuditLog.entity_type == "reconciliation")).one()
    assert (audit.actor, audit.note, audit.action) == ("fin-1", "bank error",
                                                       "resolve:written_off")
