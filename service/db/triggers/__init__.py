"""The database triggers the schema has at head, per dialect.

They live in the database, not the ORM, so they hold for every writer: the gateway, the
workers, a migration, or an operator at a SQL prompt. Migrations never import this package:
each revision carries the SQL it ran, so a change here is a new revision, and
tests/integration/test_migrations.py fails until one makes the upgraded schema equal this.
"""

from __future__ import annotations

from service.db.triggers import counts, rules


def create_statements(dialect: str) -> list[str]:
    """CREATE TRIGGER statements for `dialect` ("mysql"/"mariadb" or "sqlite")."""
    if dialect in ("mysql", "mariadb"):
        return [t.mysql.strip() for t in rules.TRIGGERS] + [s.strip() for s in counts.MYSQL]
    if dialect == "sqlite":
        return [t.sqlite.strip() for t in rules.TRIGGERS] + [s.strip() for s in counts.SQLITE]
    raise ValueError(f"no triggers written for database dialect {dialect!r}")


def names(dialect: str) -> list[str]:
    return [statement.split()[2] for statement in create_statements(dialect)]
