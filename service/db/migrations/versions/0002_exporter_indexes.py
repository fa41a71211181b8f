"""exporter indexes: covering, bounded reads for the metrics scrape and the daily summary

Revision ID: 0002
Revises: 0001

Measured with bench/exporter_scrape.py at a million payment rows (EXPLAIN before/after in
docs/operators/monitoring.md, "The metrics exporter"): the waiting-for-verification count
read the whole table through the provider index; today's refunds scanned payment_refunds; the by-status and revenue reads
fetched every row of their window from the table. Each index below turns one of those
into a range read of the index alone.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("payments", schema=None) as batch_op:
        # The new index leads with provider_code, so MySQL's foreign key to
        # payment_providers keeps an index when the old one is dropped after it.
        batch_op.create_index(
            "ix_payments_provider_created_status",
            ["provider_code", "created_at", "status"],
            unique=False,
        )
        batch_op.drop_index("ix_payments_provider_created")
        batch_op.create_index(
            "ix_payments_status_provider_created",
            ["status", "provider_code", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_payments_completed_revenue",
            ["completed_at", "status", "provider_code", "currency", "amount", "total_fees"],
            unique=False,
        )
        batch_op.drop_index("ix_payments_completed")
    with op.batch_alter_table("payment_refunds", schema=None) as batch_op:
        batch_op.create_index(
            "ix_payment_refunds_status_completed", ["status", "completed_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("payment_refunds", schema=None) as batch_op:
        batch_op.drop_index("ix_payment_refunds_status_completed")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.create_index("ix_payments_completed", ["completed_at"], unique=False)
        batch_op.drop_index("ix_payments_completed_revenue")
        batch_op.drop_index("ix_payments_status_provider_created")
        batch_op.create_index(
            "ix_payments_provider_created", ["provider_code", "created_at"], unique=False
        )
        batch_op.drop_index("ix_payments_provider_created_status")
