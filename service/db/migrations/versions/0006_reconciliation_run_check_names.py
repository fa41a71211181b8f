"""reconciliation run CHECK names as the models name them

Revision ID: 0006
Revises: 0005

0004 named reconciliation_runs' two CHECK constraints in full, and the naming convention
prefixed them again: ck_reconciliation_runs_ck_reconciliation_runs_status (and _slot), where
a database built from the models has ck_reconciliation_runs_status. Same rule, two names; an
operator or a later revision that drops the constraint by the models' name would miss it.
Found by comparing an upgraded database's CHECK constraints with the models'
(tests/integration/test_migrations.py). The rules themselves are unchanged.
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

CHECKS = {
    "status": "status IN ('requested', 'running', 'completed', 'failed')",
    "slot": "slot IS NULL OR slot IN ('queued', 'active')",
}


def _rename(old: str, new: str) -> None:
    # op.f(): the name as given, not passed through the naming convention once more.
    # reconciliation_runs has no triggers, so SQLite may rebuild it.
    with op.batch_alter_table("reconciliation_runs", recreate="auto") as batch_op:
        for key, rule in CHECKS.items():
            batch_op.drop_constraint(op.f(old.format(key)), type_="check")
            batch_op.create_check_constraint(op.f(new.format(key)), rule)


def upgrade() -> None:
    _rename("ck_reconciliation_runs_ck_reconciliation_runs_{}", "ck_reconciliation_runs_{}")


def downgrade() -> None:
    _rename("ck_reconciliation_runs_{}", "ck_reconciliation_runs_ck_reconciliation_runs_{}")
