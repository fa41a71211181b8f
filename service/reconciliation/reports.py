"""What reconciliation found, counted: one run's summary, and the open issues by type."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.db.models import LiveCount, PaymentReconciliation
from service.domain.views import RunResults
from service.reconciliation.rules import ISSUE_TYPES


def open_issue_counts(session: Session) -> dict[str, int]:
    """Unresolved issues by type, every type present (zero when none): read from the counts
    the writes keep (live_counts), so it costs the same with any number of issues."""
    counts = dict.fromkeys(ISSUE_TYPES, 0)
    for issue_type, count in session.execute(
            select(LiveCount.label_a, func.sum(LiveCount.n))
            .where(LiveCount.kind == "open_issue", LiveCount.label_a.in_(ISSUE_TYPES))
            .group_by(LiveCount.label_a)):
        counts[issue_type] = int(count)
    return counts


def summary(session: Session, run_id: str, *where: Any) -> RunResults | None:
    """What a run found, counted over the findings `where` admits (a facility's)."""
    rows = session.execute(
        select(PaymentReconciliation.result, PaymentReconciliation.issue_type,
               PaymentReconciliation.status, func.count(),
               func.min(PaymentReconciliation.created_at))
        .where(PaymentReconciliation.run_id == run_id, *where)
        .group_by(PaymentReconciliation.result, PaymentReconciliation.issue_type,
                  PaymentReconciliation.status)).all()
    if not rows:
        return None
    issues: dict[str, dict[str, int]] = {}
    matched = 0
    for result, issue_type, status, count, _ in rows:
        if result == "matched":
            matched += count
        else:
            issues.setdefault(issue_type, {}).setdefault(status, 0)
            issues[issue_type][status] += count
    started = min(r[4] for r in rows)
    return {"run_id": run_id, "started_at": started.isoformat() + "Z", "matched": matched,
            "issues": issues,
            "open_issues": sum(v.get("open", 0) for v in issues.values())}
