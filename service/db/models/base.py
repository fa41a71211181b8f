"""The declarative base every table is declared on, and the column types they share."""

from __future__ import annotations

from sqlalchemy import BigInteger, DateTime, Integer, MetaData, Numeric
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase

# Names every constraint, so Alembic migrations are the same on MySQL and SQLite.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Money = Numeric(18, 2, asdecimal=True)
# BIGINT ids on MySQL; SQLite only autoincrements an INTEGER PRIMARY KEY.
Id = BigInteger().with_variant(Integer(), "sqlite")
# Always UTC, stored naive; microseconds on MySQL so leases and audit rows order exactly.
Timestamp = DateTime(timezone=False).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
