"""money under faults: fenced leases, idempotency by resource, reconciliation runs one at a time

Revision ID: 0004
Revises: 0003

- payments.lease_token, payment_refunds.lease_token: a fresh token per claim; a worker applies
  a result only while the row still carries its token.
- idempotency_keys.resource_id replaces payment_id: every unsafe POST is idempotent, and the
  key remembers the public id of what its request created or changed (pay_…, re_…, run_…).
- payment_reconciliation: one finding per statement line (a unique key; duplicates an
  earlier overlap of runs left are dropped first, keeping a resolved one where there is one),
  and the facility an issue belongs to; bank_statements.facility_id (banks.json).
- reconciliation_runs: the run queue the API writes and the reconciliation worker executes,
  one at a time (a unique `slot`), and one scheduled run per day (a unique `scheduled_for`).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _timestamp() -> sa.types.TypeEngine[Any]:
    return (sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"))


def upgrade() -> None:
    # Plain ADD COLUMN on both dialects: a batch rebuild on SQLite would drop the triggers
    # of payments and payment_refunds.
    op.add_column("payments", sa.Column("lease_token", sa.String(length=32), nullable=True))
    op.add_column("payment_refunds",
                  sa.Column("lease_token", sa.String(length=32), nullable=True))

    op.add_column("idempotency_keys",
                  sa.Column("resource_id", sa.String(length=40), nullable=True))
    op.execute(
        "UPDATE idempotency_keys SET resource_id = "
        "(SELECT public_id FROM payments WHERE payments.id = idempotency_keys.payment_id) "
        "WHERE payment_id IS NOT NULL"
    )
    if op.get_bind().dialect.name == "sqlite":
        # idempotency_keys has no triggers, so SQLite may rebuild it to lose the foreign key.
        with op.batch_alter_table("idempotency_keys", recreate="always") as batch_op:
            batch_op.drop_column("payment_id")
    else:
        op.drop_constraint("fk_idempotency_keys_payment_id_payments", "idempotency_keys",
                           type_="foreignkey")
        op.drop_column("idempotency_keys", "payment_id")

    op.add_column("bank_statements",
                  sa.Column("facility_id", sa.String(length=64), nullable=True))
    op.add_column("payment_reconciliation",
                  sa.Column("facility_id", sa.String(length=64), nullable=True))
    op.execute(
        "UPDATE payment_reconciliation SET facility_id = "
        "(SELECT facility_id FROM payments WHERE payments.id = payment_reconciliation.payment_id) "
        "WHERE payment_id IS NOT NULL"
    )
    op.execute(
        "DELETE FROM payment_reconciliation WHERE statement_line_id IS NOT NULL AND id NOT IN "
        "(SELECT keep FROM (SELECT COALESCE(MIN(CASE WHEN status = 'resolved' THEN id END), "
        "MIN(id)) AS keep FROM payment_reconciliation WHERE statement_line_id IS NOT NULL "
        "GROUP BY statement_line_id) AS kept)"
    )
    op.create_index("uq_payment_reconciliation_statement_line_id", "payment_reconciliation",
                    ["statement_line_id"], unique=True)
    op.create_index("ix_payment_reconciliation_facility_status", "payment_reconciliation",
                    ["facility_id", "status"], unique=False)

    op.create_table(
        "reconciliation_runs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  autoincrement=True, nullable=False),
        sa.Column("public_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("slot", sa.String(length=8), nullable=True),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("requested_at", _timestamp(), nullable=False),
        sa.Column("scheduled_for", sa.Date(), nullable=True),
        sa.Column("started_at", _timestamp(), nullable=True),
        sa.Column("finished_at", _timestamp(), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_expires_at", _timestamp(), nullable=True),
        sa.Column("statements", sa.Integer(), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("matched", sa.Integer(), nullable=False),
        sa.Column("issues", sa.Text(), nullable=True),
        sa.Column("error", sa.String(length=255), nullable=True),
        sa.CheckConstraint("status IN ('requested', 'running', 'completed', 'failed')",
                           name="ck_reconciliation_runs_status"),
        sa.CheckConstraint("slot IS NULL OR slot IN ('queued', 'active')",
                           name="ck_reconciliation_runs_slot"),
        sa.PrimaryKeyConstraint("id", name="pk_reconciliation_runs"),
        sa.UniqueConstraint("public_id", name="uq_reconciliation_runs_public_id"),
        sa.UniqueConstraint("slot", name="uq_reconciliation_runs_slot"),
        sa.UniqueConstraint("scheduled_for", name="uq_reconciliation_runs_scheduled_for"),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_index("ix_reconciliation_runs_requested_at", "reconciliation_runs",
                    ["requested_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_reconciliation_runs_requested_at", table_name="reconciliation_runs")
    op.drop_table("reconciliation_runs")
    op.drop_index("ix_payment_reconciliation_facility_status",
                  table_name="payment_reconciliation")
    if op.get_bind().dialect.name != "sqlite":
        # MySQL let the unique index stand in for the foreign key's own; give it that back.
        op.create_index("fk_payment_reconciliation_statement_line_id_bank_statement_lines",
                        "payment_reconciliation", ["statement_line_id"], unique=False)
    op.drop_index("uq_payment_reconciliation_statement_line_id",
                  table_name="payment_reconciliation")
    op.execute("ALTER TABLE payment_reconciliation DROP COLUMN facility_id")
    op.execute("ALTER TABLE bank_statements DROP COLUMN facility_id")

    op.add_column("idempotency_keys", sa.Column(
        "payment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True))
    op.execute(
        "UPDATE idempotency_keys SET payment_id = "
        "(SELECT id FROM payments WHERE payments.public_id = idempotency_keys.resource_id) "
        "WHERE resource_id LIKE 'pay_%'"
    )
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("idempotency_keys", recreate="always") as batch_op:
            batch_op.drop_column("resource_id")
            batch_op.create_foreign_key("fk_idempotency_keys_payment_id_payments", "payments",
                                        ["payment_id"], ["id"])
    else:
        op.drop_column("idempotency_keys", "resource_id")
        op.create_foreign_key("fk_idempotency_keys_payment_id_payments", "idempotency_keys",
                              "payments", ["payment_id"], ["id"])
    op.execute("ALTER TABLE payment_refunds DROP COLUMN lease_token")
    op.execute("ALTER TABLE payments DROP COLUMN lease_token")
