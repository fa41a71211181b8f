"""initial schema: ten tables and their triggers

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


# The trigger SQL this revision ran, written out: a later change to service/db/triggers is a
# new revision, never a different 0001.
MYSQL_TRIGGERS = [
    """
CREATE TRIGGER trg_payments_net_amount_insert BEFORE INSERT ON payments
FOR EACH ROW SET NEW.net_amount = NEW.amount - NEW.total_fees""",
    """
CREATE TRIGGER trg_payments_net_amount_update BEFORE UPDATE ON payments
FOR EACH ROW SET NEW.net_amount = NEW.amount - NEW.total_fees""",
    """
CREATE TRIGGER trg_payments_status_audit AFTER UPDATE ON payments
FOR EACH ROW
BEGIN
  IF NOT (OLD.status <=> NEW.status) THEN
    INSERT INTO payment_audit_log
      (entity_type, entity_id, action, old_value, new_value, actor, created_at)
    VALUES ('payment', NEW.id, 'status_change', OLD.status, NEW.status,
            COALESCE(NEW.updated_by, 'system'), UTC_TIMESTAMP(6));
  END IF;
END""",
    """
CREATE TRIGGER trg_payments_created_audit AFTER INSERT ON payments
FOR EACH ROW
  INSERT INTO payment_audit_log
    (entity_type, entity_id, action, old_value, new_value, actor, created_at)
  VALUES ('payment', NEW.id, 'created', NULL, NEW.status, NEW.created_by, UTC_TIMESTAMP(6))""",
    """
CREATE TRIGGER trg_audit_log_no_update BEFORE UPDATE ON payment_audit_log
FOR EACH ROW SIGNAL SQLSTATE '45000'
  SET MESSAGE_TEXT = 'payment_audit_log is append-only: UPDATE is not allowed'""",
    """
CREATE TRIGGER trg_audit_log_no_delete BEFORE DELETE ON payment_audit_log
FOR EACH ROW SIGNAL SQLSTATE '45000'
  SET MESSAGE_TEXT = 'payment_audit_log is append-only: DELETE is not allowed'""",
    """
CREATE TRIGGER trg_refunds_bound_insert BEFORE INSERT ON payment_refunds
FOR EACH ROW
BEGIN
  IF NEW.status <> 'failed' AND
     (SELECT COALESCE(SUM(amount), 0) FROM payment_refunds
       WHERE payment_id = NEW.payment_id AND status <> 'failed') + NEW.amount
     > (SELECT amount FROM payments WHERE id = NEW.payment_id) THEN
    SIGNAL SQLSTATE '45000'
      SET MESSAGE_TEXT = 'refunds would exceed the payment amount';
  END IF;
END""",
    """
CREATE TRIGGER trg_refunds_bound_update BEFORE UPDATE ON payment_refunds
FOR EACH ROW
BEGIN
  IF NEW.status <> 'failed' AND
     (SELECT COALESCE(SUM(amount), 0) FROM payment_refunds
       WHERE payment_id = NEW.payment_id AND status <> 'failed' AND id <> NEW.id) + NEW.amount
     > (SELECT amount FROM payments WHERE id = NEW.payment_id) THEN
    SIGNAL SQLSTATE '45000'
      SET MESSAGE_TEXT = 'refunds would exceed the payment amount';
  END IF;
END""",
    """
CREATE TRIGGER trg_refunds_complete_insert AFTER INSERT ON payment_refunds
FOR EACH ROW
BEGIN
  IF NEW.status = 'completed' THEN
    UPDATE payments p
       SET p.refunded_amount = (SELECT COALESCE(SUM(r.amount), 0) FROM payment_refunds r
                                 WHERE r.payment_id = p.id AND r.status = 'completed'),
           p.status = IF(p.refunded_amount >= p.amount, 'refunded', 'partially_refunded'),
           p.updated_by = NEW.requested_by,
           p.updated_at = UTC_TIMESTAMP(6)
     WHERE p.id = NEW.payment_id;
  END IF;
END""",
    """
CREATE TRIGGER trg_refunds_complete_update AFTER UPDATE ON payment_refunds
FOR EACH ROW
BEGIN
  IF NEW.status = 'completed' AND OLD.status <> 'completed' THEN
    UPDATE payments p
       SET p.refunded_amount = (SELECT COALESCE(SUM(r.amount), 0) FROM payment_refunds r
                                 WHERE r.payment_id = p.id AND r.status = 'completed'),
           p.status = IF(p.refunded_amount >= p.amount, 'refunded', 'partially_refunded'),
           p.updated_by = NEW.requested_by,
           p.updated_at = UTC_TIMESTAMP(6)
     WHERE p.id = NEW.payment_id;
  END IF;
END""",
]

SQLITE_TRIGGERS = [
    """
CREATE TRIGGER trg_payments_net_amount_insert AFTER INSERT ON payments
BEGIN
  UPDATE payments SET net_amount = ROUND(NEW.amount - NEW.total_fees, 2) WHERE id = NEW.id;
END""",
    """
CREATE TRIGGER trg_payments_net_amount_update AFTER UPDATE OF amount, total_fees, net_amount
ON payments
WHEN NEW.net_amount IS NOT ROUND(NEW.amount - NEW.total_fees, 2)
BEGIN
  UPDATE payments SET net_amount = ROUND(NEW.amount - NEW.total_fees, 2) WHERE id = NEW.id;
END""",
    """
CREATE TRIGGER trg_payments_status_audit AFTER UPDATE OF status ON payments
WHEN OLD.status IS NOT NEW.status
BEGIN
  INSERT INTO payment_audit_log
    (entity_type, entity_id, action, old_value, new_value, actor, created_at)
  VALUES ('payment', NEW.id, 'status_change', OLD.status, NEW.status,
          COALESCE(NEW.updated_by, 'system'), datetime('now'));
END""",
    """
CREATE TRIGGER trg_payments_created_audit AFTER INSERT ON payments
BEGIN
  INSERT INTO payment_audit_log
    (entity_type, entity_id, action, old_value, new_value, actor, created_at)
  VALUES ('payment', NEW.id, 'created', NULL, NEW.status, NEW.created_by, datetime('now'));
END""",
    """
CREATE TRIGGER trg_audit_log_no_update BEFORE UPDATE ON payment_audit_log
BEGIN
  SELECT RAISE(ABORT, 'payment_audit_log is append-only: UPDATE is not allowed');
END""",
    """
CREATE TRIGGER trg_audit_log_no_delete BEFORE DELETE ON payment_audit_log
BEGIN
  SELECT RAISE(ABORT, 'payment_audit_log is append-only: DELETE is not allowed');
END""",
    """
CREATE TRIGGER trg_refunds_bound_insert BEFORE INSERT ON payment_refunds
WHEN NEW.status <> 'failed' AND
     ROUND((SELECT COALESCE(SUM(amount), 0) FROM payment_refunds
             WHERE payment_id = NEW.payment_id AND status <> 'failed')
           + NEW.amount, 2)
     > ROUND((SELECT amount FROM payments WHERE id = NEW.payment_id), 2)
BEGIN
  SELECT RAISE(ABORT, 'refunds would exceed the payment amount');
END""",
    """
CREATE TRIGGER trg_refunds_bound_update BEFORE UPDATE OF amount, status ON payment_refunds
WHEN NEW.status <> 'failed' AND
     ROUND((SELECT COALESCE(SUM(amount), 0) FROM payment_refunds
             WHERE payment_id = NEW.payment_id AND status <> 'failed' AND id <> NEW.id)
           + NEW.amount, 2)
     > ROUND((SELECT amount FROM payments WHERE id = NEW.payment_id), 2)
BEGIN
  SELECT RAISE(ABORT, 'refunds would exceed the payment amount');
END""",
    """
CREATE TRIGGER trg_refunds_complete_insert AFTER INSERT ON payment_refunds
WHEN NEW.status = 'completed'
BEGIN
  UPDATE payments
     SET refunded_amount = ROUND((SELECT COALESCE(SUM(amount), 0) FROM payment_refunds
                                   WHERE payment_id = NEW.payment_id AND status = 'completed'), 2),
         updated_by = NEW.requested_by, updated_at = datetime('now')
   WHERE id = NEW.payment_id;
  UPDATE payments
     SET status = CASE WHEN refunded_amount >= ROUND(amount, 2) THEN 'refunded'
                       ELSE 'partially_refunded' END
   WHERE id = NEW.payment_id;
END""",
    """
CREATE TRIGGER trg_refunds_complete_update AFTER UPDATE OF status ON payment_refunds
WHEN NEW.status = 'completed' AND OLD.status <> 'completed'
BEGIN
  UPDATE payments
     SET refunded_amount = ROUND((SELECT COALESCE(SUM(amount), 0) FROM payment_refunds
                                   WHERE payment_id = NEW.payment_id AND status = 'completed'), 2),
         updated_by = NEW.requested_by, updated_at = datetime('now')
   WHERE id = NEW.payment_id;
  UPDATE payments
     SET status = CASE WHEN refunded_amount >= ROUND(amount, 2) THEN 'refunded'
                       ELSE 'partially_refunded' END
   WHERE id = NEW.payment_id;
END""",
]


def upgrade() -> None:
    op.create_table(
        "bank_statements",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("bank_code", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=512), nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column("statement_date", sa.Date(), nullable=True),
        sa.Column("line_count", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "imported_at",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_statements")),
        sa.UniqueConstraint("checksum", name=op.f("uq_bank_statements_checksum")),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "payment_audit_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("entity_type", sa.String(length=32), nullable=False),
        sa.Column("entity_id", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("old_value", sa.String(length=64), nullable=True),
        sa.Column("new_value", sa.String(length=64), nullable=True),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("note", sa.String(length=1000), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_audit_log")),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    with op.batch_alter_table("payment_audit_log", schema=None) as batch_op:
        batch_op.create_index(
            "ix_payment_audit_log_entity", ["entity_type", "entity_id"], unique=False
        )

    op.create_table(
        "payment_providers",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("display_name", sa.String(length=64), nullable=False),
        sa.Column("provider_type", sa.String(length=32), nullable=False),
        sa.Column("currencies", sa.String(length=32), nullable=False),
        sa.Column("fee_percent", sa.Numeric(precision=6, scale=3), nullable=False),
        sa.Column("fee_fixed", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("fee_min", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("fee_max", sa.Numeric(precision=18, scale=2), nullable=True),
        sa.Column("min_amount", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("max_amount", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("verification_type", sa.String(length=16), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_providers")),
        sa.UniqueConstraint("code", name=op.f("uq_payment_providers_code")),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "payment_webhooks",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("provider_code", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("payment_reference", sa.String(length=40), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("result", sa.String(length=32), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_webhooks")),
        sa.UniqueConstraint(
            "provider_code", "event_id", name=op.f("uq_payment_webhooks_provider_code_event_id")
        ),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "payments",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("public_id", sa.String(length=40), nullable=False),
        sa.Column("reference", sa.String(length=40), nullable=False),
        sa.Column("provider_code", sa.String(length=32), nullable=False),
        sa.Column("facility_id", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("invoice_id", sa.String(length=64), nullable=True),
        sa.Column("amount", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("total_fees", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("net_amount", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("refunded_amount", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("provider_reference", sa.String(length=64), nullable=True),
        sa.Column("payer_account", sa.String(length=255), nullable=True),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("failure_reason", sa.String(length=255), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=False,
        ),
        sa.Column(
            "completed_at",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=True,
        ),
        sa.Column(
            "next_check_at",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=True,
        ),
        sa.Column("check_attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column(
            "lease_expires_at",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=True,
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'processing', 'awaiting_verification', 'unknown', 'verified', 'confirmed', 'rejected', 'failed', 'cancelled', 'refunded', 'partially_refunded')",
            name=op.f("ck_payments_status"),
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_payments_amount_positive")),
        sa.CheckConstraint(
            "refunded_amount >= 0 AND refunded_amount <= amount",
            name=op.f("ck_payments_refunds_within_amount"),
        ),
        sa.CheckConstraint(
            "total_fees >= 0 AND total_fees <= amount", name=op.f("ck_payments_fees_within_amount")
        ),
        sa.ForeignKeyConstraint(
            ["provider_code"],
            ["payment_providers.code"],
            name=op.f("fk_payments_provider_code_payment_providers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint("public_id", name=op.f("uq_payments_public_id")),
        sa.UniqueConstraint("reference", name=op.f("uq_payments_reference")),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.create_index("ix_payments_completed", ["completed_at"], unique=False)
        batch_op.create_index(
            "ix_payments_facility_created", ["facility_id", "created_at"], unique=False
        )
        batch_op.create_index("ix_payments_patient", ["patient_id"], unique=False)
        batch_op.create_index(
            "ix_payments_provider_created", ["provider_code", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_payments_status_next_check", ["status", "next_check_at"], unique=False
        )

    op.create_table(
        "bank_statement_lines",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "statement_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("value_date", sa.Date(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=True),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column(
            "matched_payment_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.ForeignKeyConstraint(
            ["matched_payment_id"],
            ["payments.id"],
            name=op.f("fk_bank_statement_lines_matched_payment_id_payments"),
        ),
        sa.ForeignKeyConstraint(
            ["statement_id"],
            ["bank_statements.id"],
            name=op.f("fk_bank_statement_lines_statement_id_bank_statements"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_statement_lines")),
        sa.UniqueConstraint(
            "statement_id", "line_no", name=op.f("uq_bank_statement_lines_statement_id_line_no")
        ),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    with op.batch_alter_table("bank_statement_lines", schema=None) as batch_op:
        batch_op.create_index("ix_bank_statement_lines_reference", ["reference"], unique=False)
        batch_op.create_index("ix_bank_statement_lines_value_date", ["value_date"], unique=False)

    op.create_table(
        "idempotency_keys",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("scope", sa.String(length=128), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column(
            "payment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column(
            "locked_until",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=False,
        ),
        sa.Column(
            "expires_at",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_idempotency_keys_payment_id_payments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_keys")),
        sa.UniqueConstraint("scope", "key", name=op.f("uq_idempotency_keys_scope_key")),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.create_index("ix_idempotency_keys_expires", ["expires_at"], unique=False)

    op.create_table(
        "payment_attempts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "payment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("provider_code", sa.String(length=32), nullable=False),
        sa.Column("operation", sa.String(length=16), nullable=False),
        sa.Column("request_id", sa.String(length=40), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("provider_status", sa.String(length=32), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=255), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_payment_attempts_payment_id_payments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_attempts")),
        sa.UniqueConstraint("request_id", name=op.f("uq_payment_attempts_request_id")),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    with op.batch_alter_table("payment_attempts", schema=None) as batch_op:
        batch_op.create_index("ix_payment_attempts_payment", ["payment_id"], unique=False)
        batch_op.create_index(
            "ix_payment_attempts_provider_created", ["provider_code", "created_at"], unique=False
        )

    op.create_table(
        "payment_refunds",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("public_id", sa.String(length=40), nullable=False),
        sa.Column(
            "payment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("amount", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("provider_reference", sa.String(length=64), nullable=True),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=False,
        ),
        sa.Column(
            "completed_at",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=True,
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'completed', 'failed')", name=op.f("ck_payment_refunds_status")
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_payment_refunds_amount_positive")),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_payment_refunds_payment_id_payments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_refunds")),
        sa.UniqueConstraint("public_id", name=op.f("uq_payment_refunds_public_id")),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    with op.batch_alter_table("payment_refunds", schema=None) as batch_op:
        batch_op.create_index("ix_payment_refunds_payment", ["payment_id"], unique=False)

    op.create_table(
        "payment_reconciliation",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("run_id", sa.String(length=40), nullable=False),
        sa.Column(
            "statement_line_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column(
            "payment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("issue_type", sa.String(length=16), nullable=True),
        sa.Column("expected_amount", sa.Numeric(precision=18, scale=2), nullable=True),
        sa.Column("actual_amount", sa.Numeric(precision=18, scale=2), nullable=True),
        sa.Column("detail", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("resolution_action", sa.String(length=32), nullable=True),
        sa.Column("resolution_note", sa.String(length=1000), nullable=True),
        sa.Column("resolved_by", sa.String(length=64), nullable=True),
        sa.Column(
            "resolved_at",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=True,
        ),
        sa.Column(
            "created_at",
            sa.DateTime()
            .with_variant(mysql.DATETIME(fsp=6), "mariadb")
            .with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "issue_type IS NULL OR issue_type IN ('amount', 'missing', 'unrecorded', 'duplicate', 'timing', 'currency')",
            name=op.f("ck_payment_reconciliation_issue_type"),
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"],
            ["payments.id"],
            name=op.f("fk_payment_reconciliation_payment_id_payments"),
        ),
        sa.ForeignKeyConstraint(
            ["statement_line_id"],
            ["bank_statement_lines.id"],
            name=op.f("fk_payment_reconciliation_statement_line_id_bank_statement_lines"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_reconciliation")),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    with op.batch_alter_table("payment_reconciliation", schema=None) as batch_op:
        batch_op.create_index("ix_payment_reconciliation_run", ["run_id"], unique=False)
        batch_op.create_index(
            "ix_payment_reconciliation_status_type", ["status", "issue_type"], unique=False
        )

    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in SQLITE_TRIGGERS if sqlite else MYSQL_TRIGGERS:
        op.execute(statement.strip())


def downgrade() -> None:
    for statement in reversed(MYSQL_TRIGGERS):  # the same names on both dialects
        op.execute(f"DROP TRIGGER IF EXISTS {statement.split()[2]}")
    # Dropping a table drops its indexes; dropping them first trips MySQL's foreign keys.
    for table in (
        "payment_reconciliation",
        "bank_statement_lines",
        "bank_statements",
        "idempotency_keys",
        "payment_webhooks",
        "payment_refunds",
        "payment_attempts",
        "payment_audit_log",
        "payments",
        "payment_providers",
    ):
        op.drop_table(table)
