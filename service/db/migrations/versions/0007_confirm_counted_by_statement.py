"""a reconciliation confirm counts its moves in one statement

Revision ID: 0007
Revises: 0006

MySQL only: trg_payments_count_update leaves out a move from awaiting_verification to
confirmed while the session variable @confirms_counted_by_statement is 1. Reconciliation's
confirm sets it around its UPDATE of a chunk's payments and subtracts what moved from the
counts in one statement (service/reconciliation/storage.py); every other writer, and every
other move, is counted by the trigger as before. The per-row counter UPDATE was a fifth of
what a confirm cost the server. SQLite's triggers are unchanged.

The trigger SQL is written out here, not imported, so this revision creates the same
trigger whatever later code says.
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SHARDS = 64
WAITING = "('processing', 'awaiting_verification', 'unknown')"


def _mysql_add(a: str, b: str, row: str, step: int) -> str:
    where = (f"kind = 'waiting' AND label_a = {a} AND label_b = {b} "
             f"AND shard = {row}.id % {SHARDS}")
    return (f"UPDATE live_counts SET n = n + ({step}) WHERE {where};\n"
            f"    IF ROW_COUNT() = 0 THEN\n"
            f"      INSERT INTO live_counts (kind, label_a, label_b, shard, n) VALUES "
            f"('waiting', {a}, {b}, {row}.id % {SHARDS}, {step}) "
            f"ON DUPLICATE KEY UPDATE n = n + ({step});\n"
            f"    END IF;")


_ENTER = _mysql_add("NEW.provider_code", "NEW.status", "NEW", 1)
_LEAVE = _mysql_add("OLD.provider_code", "OLD.status", "OLD", -1)


def _update_trigger(condition: str) -> str:
    return f"""
CREATE TRIGGER trg_payments_count_update AFTER UPDATE ON payments
FOR EACH ROW
BEGIN
  IF {condition} THEN
    IF OLD.status IN {WAITING} AND (NEW.status NOT IN {WAITING}
        OR OLD.provider_code < NEW.provider_code
        OR (OLD.provider_code = NEW.provider_code AND OLD.status < NEW.status)) THEN
      {_LEAVE}
      IF NEW.status IN {WAITING} THEN
        {_ENTER}
      END IF;
    ELSE
      IF NEW.status IN {WAITING} THEN
        {_ENTER}
      END IF;
      IF OLD.status IN {WAITING} THEN
        {_LEAVE}
      END IF;
    END IF;
  END IF;
END"""


MOVED = "NOT (OLD.status <=> NEW.status AND OLD.provider_code <=> NEW.provider_code)"
NOT_COUNTED_BY_STATEMENT = (
    "\n     AND NOT (@confirms_counted_by_statement <=> 1 AND OLD.status = "
    "'awaiting_verification'\n              AND NEW.status = 'confirmed' AND "
    "OLD.provider_code <=> NEW.provider_code)")


def _replace(condition: str) -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    # MySQL commits each DDL statement, and has no CREATE OR REPLACE TRIGGER. Old gateway
    # tasks keep serving while the first new one migrates (docs/operators/swarm.md), so a
    # payment moved between the DROP and the CREATE would never be counted: the table is
    # locked for writing across both, for the moment they take.
    op.execute("LOCK TABLES payments WRITE")
    try:
        op.execute("DROP TRIGGER IF EXISTS trg_payments_count_update")
        op.execute(_update_trigger(condition).strip())
    finally:
        op.execute("UNLOCK TABLES")


def upgrade() -> None:
    _replace(MOVED + NOT_COUNTED_BY_STATEMENT)


def downgrade() -> None:
    _replace(MOVED)
