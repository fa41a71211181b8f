"""refund retries: a pending refund's attempt count and when the payment worker asks again

Revision ID: 0003
Revises: 0002

A refund stays `pending` when the provider did not answer; the payment worker retries it
with backoff. Pending refunds are few, and the (status, completed_at) index from 0002
already narrows the worker's scan to them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("payment_refunds", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("attempts", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column(
                "next_attempt_at",
                sa.DateTime()
                .with_variant(mysql.DATETIME(fsp=6), "mariadb")
                .with_variant(mysql.DATETIME(fsp=6), "mysql"),
                nullable=True,
            )
        )
    # Refunds left pending before this migration are retried from the first worker pass.
    op.execute(
        "UPDATE payment_refunds SET next_attempt_at = created_at WHERE status = 'pending'"
    )


def downgrade() -> None:
    # A plain DROP COLUMN (SQLite has it since 3.35): the batch rebuild Alembic would do on
    # SQLite recreates the table without its triggers.
    op.execute("ALTER TABLE payment_refunds DROP COLUMN next_attempt_at")
    op.execute("ALTER TABLE payment_refunds DROP COLUMN attempts")
