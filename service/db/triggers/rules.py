"""The triggers that keep the rules: audit trail, append-only log, refund bounds, net amount."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Trigger:
    name: str
    mysql: str
    sqlite: str


# The refund triggers come in insert/update pairs that must say the same thing, so each pair
# is written once. On update the row's own old amount is left out of the sum.
_EXCEED = "refunds would exceed the payment amount"


def _refund_bound(event: str) -> Trigger:
    others = " AND id <> NEW.id" if event == "update" else ""
    columns = " OF amount, status" if event == "update" else ""
    return Trigger(
        f"trg_refunds_bound_{event}",
        mysql=f"""
CREATE TRIGGER trg_refunds_bound_{event} BEFORE {event.upper()} ON payment_refunds
FOR EACH ROW
BEGIN
  IF NEW.status <> 'failed' AND
     (SELECT COALESCE(SUM(amount), 0) FROM payment_refunds
       WHERE payment_id = NEW.payment_id AND status <> 'failed'{others}) + NEW.amount
     > (SELECT amount FROM payments WHERE id = NEW.payment_id) THEN
    SIGNAL SQLSTATE '45000'
      SET MESSAGE_TEXT = '{_EXCEED}';
  END IF;
END""",
        sqlite=f"""
CREATE TRIGGER trg_refunds_bound_{event} BEFORE {event.upper()}{columns} ON payment_refunds
WHEN NEW.status <> 'failed' AND
     ROUND((SELECT COALESCE(SUM(amount), 0) FROM payment_refunds
             WHERE payment_id = NEW.payment_id AND status <> 'failed'{others})
           + NEW.amount, 2)
     > ROUND((SELECT amount FROM payments WHERE id = NEW.payment_id), 2)
BEGIN
  SELECT RAISE(ABORT, '{_EXCEED}');
END""",
    )


def _refund_completion(event: str) -> Trigger:
    """A refund that is (or becomes) completed moves its payment to refunded or
    partially_refunded, with the refund's requester as the actor."""
    became = " AND OLD.status <> 'completed'" if event == "update" else ""
    columns = " OF status" if event == "update" else ""
    return Trigger(
        f"trg_refunds_complete_{event}",
        mysql=f"""
CREATE TRIGGER trg_refunds_complete_{event} AFTER {event.upper()} ON payment_refunds
FOR EACH ROW
BEGIN
  IF NEW.status = 'completed'{became} THEN
    UPDATE payments p
       SET p.refunded_amount = (SELECT COALESCE(SUM(r.amount), 0) FROM payment_refunds r
                                 WHERE r.payment_id = p.id AND r.status = 'completed'),
           p.status = IF(p.refunded_amount >= p.amount, 'refunded', 'partially_refunded'),
           p.updated_by = NEW.requested_by,
           p.updated_at = UTC_TIMESTAMP(6)
     WHERE p.id = NEW.payment_id;
  END IF;
END""",
        sqlite=f"""
CREATE TRIGGER trg_refunds_complete_{event} AFTER {event.upper()}{columns} ON payment_refunds
WHEN NEW.status = 'completed'{became}
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
    )


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
    _refund_bound("insert"),
    _refund_bound("update"),
    _refund_completion("insert"),
    _refund_completion("update"),
)
