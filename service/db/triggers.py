"""The database triggers, per dialect: audit trail, append-only log, refund bounds, net amount.

They live in the database, not the ORM, so they hold for every writer: the gateway, the
workers, a migration, or an operator at a SQL prompt.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Trigger:
    name: str
    mysql: str
    sqlite: str


# MySQL: ROUND is exact on DECIMAL. SQLite stores NUMERIC as REAL, so every comparison of
# sums is rounded to cents there to keep 0.1 + 0.2 equal to 0.3.
TRIGGERS: tuple[Trigger, ...] = (
    Trigger(
        "trg_payments_net_amount_insert",
        mysql="""
CREATE TRIGGER trg_payments_net_amount_insert BEFORE INSERT ON payments
FOR EACH ROW SET NEW.net_amount = NEW.amount - NEW.total_fees""",
        sqlite="""
CREATE TRIGGER trg_payments_net_amount_insert AFTER INSERT ON payments
BEGIN
  UPDATE payments SET net_amount = ROUND(NEW.amount - NEW.total_fees, 2) WHERE id = NEW.id;
END""",
    ),
    Trigger(
        "trg_payments_net_amount_update",
        mysql="""
CREATE TRIGGER trg_payments_net_amount_update BEFORE UPDATE ON payments
FOR EACH ROW SET NEW.net_amount = NEW.amount - NEW.total_fees""",
        sqlite="""
CREATE TRIGGER trg_payments_net_amount_update AFTER UPDATE OF amount, total_fees, net_amount
ON payments
WHEN NEW.net_amount IS NOT ROUND(NEW.amount - NEW.total_fees, 2)
BEGIN
  UPDATE payments SET net_amount = ROUND(NEW.amount - NEW.total_fees, 2) WHERE id = NEW.id;
END""",
    ),
    Trigger(
        "trg_payments_status_audit",
        mysql="""
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
        sqlite="""
CREATE TRIGGER trg_payments_status_audit AFTER UPDATE OF status ON payments
WHEN OLD.status IS NOT NEW.status
BEGIN
  INSERT INTO payment_audit_log
    (entity_type, entity_id, action, old_value, new_value, actor, created_at)
  VALUES ('payment', NEW.id, 'status_change', OLD.status, NEW.status,
          COALESCE(NEW.updated_by, 'system'), datetime('now'));
END""",
    ),
    Trigger(
        "trg_payments_created_audit",
        mysql="""
CREATE TRIGGER trg_payments_created_audit AFTER INSERT ON payments
FOR EACH ROW
  INSERT INTO payment_audit_log
    (entity_type, entity_id, action, old_value, new_value, actor, created_at)
  VALUES ('payment', NEW.id, 'created', NULL, NEW.status, NEW.created_by, UTC_TIMESTAMP(6))""",
        sqlite="""
CREATE TRIGGER trg_payments_created_audit AFTER INSERT ON payments
BEGIN
  INSERT INTO payment_audit_log
    (entity_type, entity_id, action, old_value, new_value, actor, created_at)
  VALUES ('payment', NEW.id, 'created', NULL, NEW.status, NEW.created_by, datetime('now'));
END""",
    ),
    Trigger(
        "trg_audit_log_no_update",
        mysql="""
CREATE TRIGGER trg_audit_log_no_update BEFORE UPDATE ON payment_audit_log
FOR EACH ROW SIGNAL SQLSTATE '45000'
  SET MESSAGE_TEXT = 'payment_audit_log is append-only: UPDATE is not allowed'""",
        sqlite="""
CREATE TRIGGER trg_audit_log_no_update BEFORE UPDATE ON payment_audit_log
BEGIN
  SELECT RAISE(ABORT, 'payment_audit_log is append-only: UPDATE is not allowed');
END""",
    ),
    Trigger(
        "trg_audit_log_no_delete",
        mysql="""
CREATE TRIGGER trg_audit_log_no_delete BEFORE DELETE ON payment_audit_log
FOR EACH ROW SIGNAL SQLSTATE '45000'
  SET MESSAGE_TEXT = 'payment_audit_log is append-only: DELETE is not allowed'""",
        sqlite="""
CREATE TRIGGER trg_audit_log_no_delete BEFORE DELETE ON payment_audit_log
BEGIN
  SELECT RAISE(ABORT, 'payment_audit_log is append-only: DELETE is not allowed');
END""",
    ),
    Trigger(
        "trg_refunds_bound_insert",
        mysql="""
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
        sqlite="""
CREATE TRIGGER trg_refunds_bound_insert BEFORE INSERT ON payment_refunds
WHEN NEW.status <> 'failed' AND
     ROUND((SELECT COALESCE(SUM(amount), 0) FROM payment_refunds
             WHERE payment_id = NEW.payment_id AND status <> 'failed') + NEW.amount, 2)
     > ROUND((SELECT amount FROM payments WHERE id = NEW.payment_id), 2)
BEGIN
  SELECT RAISE(ABORT, 'refunds would exceed the payment amount');
END""",
    ),
    Trigger(
        "trg_refunds_bound_update",
        mysql="""
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
        sqlite="""
CREATE TRIGGER trg_refunds_bound_update BEFORE UPDATE OF amount, status ON payment_refunds
WHEN NEW.status <> 'failed' AND
     ROUND((SELECT COALESCE(SUM(amount), 0) FROM payment_refunds
             WHERE payment_id = NEW.payment_id AND status <> 'failed' AND id <> NEW.id)
           + NEW.amount, 2)
     > ROUND((SELECT amount FROM payments WHERE id = NEW.payment_id), 2)
BEGIN
  SELECT RAISE(ABORT, 'refunds would exceed the payment amount');
END""",
    ),
    Trigger(
        "trg_refunds_complete_insert",
        mysql="""
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
        sqlite="""
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
    ),
    Trigger(
        "trg_refunds_complete_update",
        mysql="""
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
        sqlite="""
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
    ),
)


def create_statements(dialect: str) -> list[str]:
    """CREATE TRIGGER statements for `dialect` ("mysql"/"mariadb" or "sqlite")."""
    if dialect in ("mysql", "mariadb"):
        return [t.mysql.strip() for t in TRIGGERS]
    if dialect == "sqlite":
        return [t.sqlite.strip() for t in TRIGGERS]
    raise ValueError(f"no triggers written for database dialect {dialect!r}")


def drop_statements() -> list[str]:
    return [f"DROP TRIGGER IF EXISTS {t.name}" for t in reversed(TRIGGERS)]
