"""The triggers that keep live_counts: payments awaiting an answer by provider and status, and
open reconciliation issues by type, updated in the transaction that changes them, so a metrics
scrape reads a few dozen rows whatever the queue's length."""

from __future__ import annotations

from service.domain.status import PaymentStatus

# Concurrent writers work on recent rows, whose ids are consecutive: with more shards than
# writers at once, two of them rarely touch the same counter row.
SHARDS = 64
# The payments whose answer is awaited: the exporter's queue sizes read these counts.
WAITING = "(" + ", ".join(f"'{s}'" for s in (
    PaymentStatus.PROCESSING, PaymentStatus.AWAITING_VERIFICATION, PaymentStatus.UNKNOWN)) + ")"


# A session variable: while it is 1, the update trigger leaves out moves from
# awaiting_verification to confirmed, and the writer takes them off the counts itself, one
# statement for a whole chunk (reconciliation/storage.py, confirm_payments). On MySQL a
# trigger runs per row, and its counter UPDATE was about a sixth of a confirm's cost. Any
# other move is still counted here; the writer sets the variable back to NULL at once.
COUNTED_BY_STATEMENT = "@confirms_counted_by_statement"
_AWAITING = PaymentStatus.AWAITING_VERIFICATION.value
_CONFIRMED = PaymentStatus.CONFIRMED.value


def _mysql_add(kind: str, a: str, b: str, row: str, step: int) -> str:
    """Add `step` to a counter: an UPDATE of the existing row (a lock on that row alone),
    an upsert only the first time (INSERT … ON DUPLICATE KEY locks more, and waits more)."""
    where = (f"kind = '{kind}' AND label_a = {a} AND label_b = {b} "
             f"AND shard = {row}.id % {SHARDS}")
    return (f"UPDATE live_counts SET n = n + ({step}) WHERE {where};\n"
            f"    IF ROW_COUNT() = 0 THEN\n"
            f"      INSERT INTO live_counts (kind, label_a, label_b, shard, n) VALUES "
            f"('{kind}', {a}, {b}, {row}.id % {SHARDS}, {step}) "
            f"ON DUPLICATE KEY UPDATE n = n + ({step});\n"
            f"    END IF;")


_MYSQL_ENTER = _mysql_add("waiting", "NEW.provider_code", "NEW.status", "NEW", 1)
_MYSQL_LEAVE = _mysql_add("waiting", "OLD.provider_code", "OLD.status", "OLD", -1)
_MYSQL_OPEN = _mysql_add("open_issue", "NEW.issue_type", "''", "NEW", 1)
_MYSQL_CLOSE = _mysql_add("open_issue", "OLD.issue_type", "''", "OLD", -1)

MYSQL = [
    f"""
CREATE TRIGGER trg_payments_count_insert AFTER INSERT ON payments
FOR EACH ROW
BEGIN
  IF NEW.status IN {WAITING} THEN
    {_MYSQL_ENTER}
  END IF;
END""",
    # Both counters of a move, in label order: two transactions moving payments in opposite
    # directions take the rows in the same order and never deadlock on them. A confirm by
    # reconciliation counts its moves itself (COUNTED_BY_STATEMENT).
    f"""
CREATE TRIGGER trg_payments_count_update AFTER UPDATE ON payments
FOR EACH ROW
BEGIN
  IF NOT (OLD.status <=> NEW.status AND OLD.provider_code <=> NEW.provider_code)
     AND NOT ({COUNTED_BY_STATEMENT} <=> 1 AND OLD.status = '{_AWAITING}'
              AND NEW.status = '{_CONFIRMED}' AND OLD.provider_code <=> NEW.provider_code) THEN
    IF OLD.status IN {WAITING} AND (NEW.status NOT IN {WAITING}
        OR OLD.provider_code < NEW.provider_code
        OR (OLD.provider_code = NEW.provider_code AND OLD.status < NEW.status)) THEN
      {_MYSQL_LEAVE}
      IF NEW.status IN {WAITING} THEN
        {_MYSQL_ENTER}
      END IF;
    ELSE
      IF NEW.status IN {WAITING} THEN
        {_MYSQL_ENTER}
      END IF;
      IF OLD.status IN {WAITING} THEN
        {_MYSQL_LEAVE}
      END IF;
    END IF;
  END IF;
END""",
    f"""
CREATE TRIGGER trg_payments_count_delete AFTER DELETE ON payments
FOR EACH ROW
BEGIN
  IF OLD.status IN {WAITING} THEN
    {_MYSQL_LEAVE}
  END IF;
END""",
    f"""
CREATE TRIGGER trg_reconciliation_count_insert AFTER INSERT ON payment_reconciliation
FOR EACH ROW
BEGIN
  IF NEW.status = 'open' AND NEW.issue_type IS NOT NULL THEN
    {_MYSQL_OPEN}
  END IF;
END""",
    f"""
CREATE TRIGGER trg_reconciliation_count_update AFTER UPDATE ON payment_reconciliation
FOR EACH ROW
BEGIN
  IF OLD.status = 'open' AND OLD.issue_type IS NOT NULL
     AND NOT (NEW.status <=> 'open' AND NEW.issue_type <=> OLD.issue_type) THEN
    {_MYSQL_CLOSE}
  END IF;
  IF NEW.status = 'open' AND NEW.issue_type IS NOT NULL
     AND NOT (OLD.status <=> 'open' AND OLD.issue_type <=> NEW.issue_type) THEN
    {_MYSQL_OPEN}
  END IF;
END""",
    f"""
CREATE TRIGGER trg_reconciliation_count_delete AFTER DELETE ON payment_reconciliation
FOR EACH ROW
BEGIN
  IF OLD.status = 'open' AND OLD.issue_type IS NOT NULL THEN
    {_MYSQL_CLOSE}
  END IF;
END""",
]

_UPSERT = ("INSERT INTO live_counts (kind, label_a, label_b, shard, n) VALUES ({values}, 1) "
           "ON CONFLICT (kind, label_a, label_b, shard) DO UPDATE SET n = n + 1;")
_LEAVE = ("UPDATE live_counts SET n = n - 1 WHERE kind = {kind} AND label_a = {a} "
          "AND label_b = {b} AND shard = OLD.id % " + str(SHARDS) + ";")
_PAYMENT_MOVED = "(OLD.status IS NOT NEW.status OR OLD.provider_code IS NOT NEW.provider_code)"
_ISSUE_MOVED = "(OLD.status IS NOT NEW.status OR OLD.issue_type IS NOT NEW.issue_type)"
_NEW_PAYMENT = _UPSERT.format(values=f"'waiting', NEW.provider_code, NEW.status, "
                                     f"NEW.id % {SHARDS}")
_OLD_PAYMENT = _LEAVE.format(kind="'waiting'", a="OLD.provider_code", b="OLD.status")
_NEW_ISSUE = _UPSERT.format(values=f"'open_issue', NEW.issue_type, '', NEW.id % {SHARDS}")
_OLD_ISSUE = _LEAVE.format(kind="'open_issue'", a="OLD.issue_type", b="''")
_OPEN_NEW = "NEW.status = 'open' AND NEW.issue_type IS NOT NULL"
_OPEN_OLD = "OLD.status = 'open' AND OLD.issue_type IS NOT NULL"

SQLITE = [
    f"""
CREATE TRIGGER trg_payments_count_insert AFTER INSERT ON payments
WHEN NEW.status IN {WAITING}
BEGIN {_NEW_PAYMENT} END""",
    f"""
CREATE TRIGGER trg_payments_count_leave AFTER UPDATE OF status, provider_code ON payments
WHEN OLD.status IN {WAITING} AND {_PAYMENT_MOVED}
BEGIN {_OLD_PAYMENT} END""",
    f"""
CREATE TRIGGER trg_payments_count_enter AFTER UPDATE OF status, provider_code ON payments
WHEN NEW.status IN {WAITING} AND {_PAYMENT_MOVED}
BEGIN {_NEW_PAYMENT} END""",
    f"""
CREATE TRIGGER trg_payments_count_delete AFTER DELETE ON payments
WHEN OLD.status IN {WAITING}
BEGIN {_OLD_PAYMENT} END""",
    f"""
CREATE TRIGGER trg_reconciliation_count_insert AFTER INSERT ON payment_reconciliation
WHEN {_OPEN_NEW}
BEGIN {_NEW_ISSUE} END""",
    f"""
CREATE TRIGGER trg_reconciliation_count_leave AFTER UPDATE OF status, issue_type
ON payment_reconciliation
WHEN {_OPEN_OLD} AND {_ISSUE_MOVED}
BEGIN {_OLD_ISSUE} END""",
    f"""
CREATE TRIGGER trg_reconciliation_count_enter AFTER UPDATE OF status, issue_type
ON payment_reconciliation
WHEN {_OPEN_NEW} AND {_ISSUE_MOVED}
BEGIN {_NEW_ISSUE} END""",
    f"""
CREATE TRIGGER trg_reconciliation_count_delete AFTER DELETE ON payment_reconciliation
WHEN {_OPEN_OLD}
BEGIN {_OLD_ISSUE} END""",
]
