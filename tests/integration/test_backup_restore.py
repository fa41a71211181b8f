"""Backup and restore with the operators' scripts (docs/operators/backup.md): a dump of a live
payment database, restored into a new server, brings back every row, the triggers and CHECK
constraints that guard them, and a database the service serves at head; a damaged dump is
refused before the target is touched."""

from __future__ import annotations

import gzip
import hashlib
import os
import secrets
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.exc import DBAPIError

from service.api.app import create_app
from service.api.auth import mint
from service.db import migrate, triggers
from service.settings import Settings
from tests.conftest import TEST_JWT_SECRET, fresh_database, random_key
from tests.servers import Server, free_port, mariadb_server
from tests.simulator import running_simulator

ROOT = Path(__file__).resolve().parents[2]
BACKUP = ROOT / "tools" / "backup-db"
RESTORE = ROOT / "tools" / "restore-db"
ADMIN = {"Authorization": "Bearer " + mint(TEST_JWT_SECRET, "u1", ["accountant"], "fac-1")}


@dataclass(frozen=True)
class Database:
    """A payment database and the account the service runs as, the way production runs: the
    triggers' definer is that account, which the new server does not have by that name."""

    server: str  # root URL, no database
    name: str
    user: str
    password: str

    @property
    def app_url(self) -> str:
        url = make_url(self.server)
        return f"mysql+pymysql://{self.user}:{self.password}@{url.host}:{url.port}/{self.name}"


def account(server: str, database: str, user: str) -> Database:
    """`user` with a fresh password and every privilege on `database` (as MYSQL_USER gets on
    MYSQL_DATABASE in the compose database container), created on `server`."""
    password = secrets.token_hex(16)
    admin = create_engine(server)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'"))
        connection.execute(text(f"GRANT ALL ON `{database}`.* TO '{user}'@'%'"))
    admin.dispose()
    return Database(server, database, user, password)


@pytest.fixture
def source(mysql_server: str) -> Iterator[Database]:
    with fresh_database(mysql_server) as url:
        name = make_url(url).database
        assert name is not None
        found = account(mysql_server, name, f"nc_app_{secrets.token_hex(4)}")
        try:
            yield found
        finally:
            admin = create_engine(mysql_server)
            with admin.begin() as connection:
                connection.execute(text(f"DROP USER IF EXISTS '{found.user}'@'%'"))
            admin.dispose()


def control(sim: str, provider: str, **values: Any) -> None:
    assert httpx.put(f"{sim}/_control/{provider}", json=values).status_code == 200


def pay(client: TestClient[Any], provider: str, amount: str, **headers: str) -> dict[str, Any]:
    r = client.post("/api/v1/payments", headers={**ADMIN, **headers}, json={
        "provider": provider, "amount": amount, "currency": "SDG", "patient_id": "p-1",
        "payer_phone": "+249912345678"})
    assert r.status_code in (201, 202), r.text
    return dict(r.json())


def take_payments(client: TestClient[Any], sim: str, idempotency_key: str
                  ) -> list[dict[str, Any]]:
    """Payments in every kind of state, refunds among them: the audit log's rows are the
    triggers' record of each creation and status move. The first was posted with
    `idempotency_key`; each is returned as its POST answered."""
    control(sim, "visa", settle_after_seconds=0)
    control(sim, "mtn_money", mode="declining", decline_rate=1.0, settle_after_seconds=0)
    confirmed = pay(client, "visa", "80.00", **{"Idempotency-Key": idempotency_key})
    refunded = pay(client, "visa", "80.00")
    r = client.post(f"/api/v1/payments/{refunded['id']}/refunds", json={"amount": "80.00"},
                    headers=ADMIN)
    assert r.json()["payment"]["status"] == "refunded", r.text
    cash = pay(client, "cash", "100.00")
    assert client.post(f"/api/v1/payments/{cash['id']}/verify", json={"note": "counted"},
                       headers=ADMIN).json()["status"] == "verified"
    r = client.post(f"/api/v1/payments/{cash['id']}/refunds", json={"amount": "40.00"},
                    headers=ADMIN)
    assert r.json()["payment"]["status"] == "partially_refunded", r.text
    waiting = pay(client, "cash", "55.50")
    declined = pay(client, "mtn_money", "20.00")
    processing = pay(client, "zain_cash", "150.00")  # settles later: a live count
    assert [waiting["status"], declined["status"], processing["status"]] == [
        "awaiting_verification", "rejected", "processing"]
    return [confirmed, refunded, cash, waiting, declined, processing]


def run(script: Path, *args: str, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(script), *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})}, check=False)


def connection_args(url: str, user: str = "root") -> list[str]:
    parsed = make_url(url)
    return ["--host", str(parsed.host), "--port", str(parsed.port), "--user", user]


def tables(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(text("SHOW TABLES")).scalars())


def contents(engine: Engine) -> dict[str, Any]:
    """Every table's definition and every row in a fixed order; the triggers and CHECK
    constraints as the server reports them."""
    found: dict[str, Any] = {}
    with engine.connect() as connection:
        database = connection.execute(text("SELECT DATABASE()")).scalar_one()
        for table in tables(engine):
            width = len(connection.execute(text(f"SELECT * FROM `{table}` LIMIT 0")).keys())
            order = ", ".join(str(n) for n in range(1, width + 1))
            found[table] = (
                connection.execute(text(f"SHOW CREATE TABLE `{table}`")).one()[1],
                [tuple(row) for row in connection.execute(
                    text(f"SELECT * FROM `{table}` ORDER BY {order}"))],
            )
        found["triggers"] = [tuple(row) for row in connection.execute(text(
            "SELECT trigger_name, event_object_table, action_timing, event_manipulation, "
            "action_statement, sql_mode FROM information_schema.triggers "
            "WHERE trigger_schema = :db ORDER BY trigger_name"), {"db": database})]
        found["checks"] = [tuple(row) for row in connection.execute(text(
            "SELECT table_name, constraint_name, check_clause "
            "FROM information_schema.check_constraints "
            "WHERE constraint_schema = :db ORDER BY table_name, constraint_name"),
            {"db": database})]
    return found


def refused(engine: Engine, statement: str) -> str:
    """The server's message when it refuses `statement` (the test fails if it does not)."""
    with pytest.raises(DBAPIError) as error, engine.begin() as connection:
        connection.execute(text(statement))
    return str(error.value.orig)


def databases(server: Server) -> list[str]:
    engine = create_engine(server.url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(text("SHOW DATABASES")).scalars())
    finally:
        engine.dispose()


def test_a_dump_restored_into_a_new_server_brings_back_every_payment_and_its_guards(
    source: Database, settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    idempotency_key = random_key()
    with running_simulator(settings_factory()) as sim:
        def service_on(url: str) -> TestClient[Any]:
            return TestClient(create_app(settings_factory(
                database_url=url, provider_simulator_url=sim,
                gateway_public_url=f"http://127.0.0.1:{free_port()}")))

        engine = create_engine(source.app_url)
        migrate.prepare(engine)
        engine.dispose()
        with service_on(source.app_url) as client:
            taken = take_payments(client, sim, idempotency_key)
            ids = [p["id"] for p in taken]
            served = {i: client.get(f"/api/v1/payments/{i}", headers=ADMIN).json() for i in ids}

        # The operator's backup: the account's password in an option file, never an argument.
        option_file = tmp_path / "backup.cnf"
        option_file.write_text(f"[client]\npassword={source.password}\n")
        option_file.chmod(0o600)
        backups = tmp_path / "backups"
        backups.mkdir()
        made = run(BACKUP, f"--defaults-extra-file={option_file}",
                   *connection_args(source.server, source.user),
                   "--database", source.name, str(backups))
        assert made.returncode == 0, made.stderr
        dump = Path(made.stdout.strip())
        # Patients' payments: readable by the owner only, whatever the caller's umask.
        assert dump.stat().st_mode & 0o077 == 0, oct(dump.stat().st_mode)
        assert dump.parent == backups and dump.name.endswith(".sql.gz")
        assert f"dumping {source.name}" in made.stderr and "wrote" in made.stderr
        assert source.password not in made.stdout + made.stderr
        assert dump.with_name(dump.name + ".sha256").read_text().split() == [
            hashlib.sha256(dump.read_bytes()).hexdigest(), dump.name]

        source_engine = create_engine(f"{source.server}/{source.name}")
        dumped = contents(source_engine)
        source_engine.dispose()
        audit = dumped["payment_audit_log"][1]
        assert {(row[3], row[5]) for row in audit} >= {
            ("created", "awaiting_verification"), ("status_change", "confirmed"),
            ("status_change", "refunded"), ("status_change", "rejected"),
            ("status_change", "partially_refunded"), ("status_change", "verified")}
        assert len(dumped["payments"][1]) == len(ids)

        target = mariadb_server(tmp_path / "target")  # a new, empty server of our own
        with target.running():
            empty = databases(target)
            _refuses_damaged_dumps(dump, target, empty)

            # As a new compose database container starts: an empty database and the
            # service's account on it; the restore runs as that account, its password in a
            # file (the container's secret).
            admin = create_engine(target.url)
            with admin.begin() as connection:
                connection.execute(text(f"CREATE DATABASE `{source.name}`"))
            admin.dispose()
            restored_db = account(target.url, source.name, "payments")
            password_file = tmp_path / "database_password"
            password_file.write_text(restored_db.password)
            restored = run(RESTORE, f"--password-file={password_file}",
                           *connection_args(target.url, "payments"), str(dump))
            assert restored.returncode == 0, restored.stderr
            assert restored_db.password not in restored.stdout + restored.stderr
            target_url = f"{target.url}/{source.name}"
            target_engine = create_engine(target_url)
            try:
                got = contents(target_engine)
                # Every table: its definition, and every row in full, payments and the audit
                # log among them; then the triggers and CHECK constraints.
                assert got.keys() == dumped.keys()
                for name in dumped:
                    assert got[name] == dumped[name], name
                assert sorted(name for name, *_ in got["triggers"]) == sorted(
                    triggers.names("mysql"))
                assert len(got["checks"]) >= 9
                assert migrate.current(target_engine) == migrate.head()

                # The service serves the restored database: ready, the same payments, and
                # the Idempotency-Key of a payment taken before the dump still replays it.
                with service_on(restored_db.app_url) as client:
                    ready = client.get("/health/ready")
                    assert ready.status_code == 200, ready.text
                    assert ready.json()["checks"]["migrations"] == "ok"
                    for i in ids:
                        assert client.get(f"/api/v1/payments/{i}",
                                          headers=ADMIN).json() == served[i]
                    assert pay(client, "visa", "80.00",
                               **{"Idempotency-Key": idempotency_key}) == taken[0]
                    new = pay(client, "cash", "30.00")["id"]
                _new_rows_follow_the_restored_ones(target_engine, new, dumped)
                _guards_still_hold(target_engine, ids)

                again = run(RESTORE, *connection_args(target.url), str(dump))
                assert again.returncode == 1
                assert "already has" in again.stderr and "nothing was restored" in again.stderr
            finally:
                target_engine.dispose()


def _refuses_damaged_dumps(dump: Path, target: Server, empty: list[str]) -> None:
    """A flipped byte and a cut-off file each stop the restore at the checksum, with a
    message that says so, and the new server is left as it was."""
    good = dump.read_bytes()
    damaged = dump.parent / "damaged"
    damaged.mkdir()
    for name, data in (("flipped", good[:100] + bytes([good[100] ^ 0x01]) + good[101:]),
                       ("truncated", good[: len(good) // 2])):
        copy = damaged / f"{name}.sql.gz"
        copy.write_bytes(data)
        copy.with_name(copy.name + ".sha256").write_text(
            dump.with_name(dump.name + ".sha256").read_text())
        r = run(RESTORE, *connection_args(target.url), str(copy))
        assert r.returncode == 1, (name, r.stderr)
        assert "checksum mismatch" in r.stderr and "nothing was restored" in r.stderr, r.stderr
        assert databases(target) == empty
    # Whole gzip, right checksum, but the SQL stops short (a dump that was cut off, and then
    # summed by hand): the missing "-- Dump completed" line gives it away.
    sql = gzip.decompress(good)
    cut = damaged / "cut.sql.gz"
    cut.write_bytes(gzip.compress(sql[: len(sql) * 2 // 3]))
    cut.with_name(cut.name + ".sha256").write_text(
        f"{hashlib.sha256(cut.read_bytes()).hexdigest()}  {cut.name}\n")
    r = run(RESTORE, *connection_args(target.url), str(cut))
    assert r.returncode == 1 and "is incomplete" in r.stderr, r.stderr
    assert databases(target) == empty
    unsummed = damaged / "unsummed.sql.gz"
    unsummed.write_bytes(good)
    r = run(RESTORE, *connection_args(target.url), str(unsummed))
    assert r.returncode == 1 and "no checksum file" in r.stderr, r.stderr
    usage = run(RESTORE, "--password=hunter2", str(dump))
    assert usage.returncode == 2 and "hunter2" not in usage.stderr
    assert databases(target) == empty


def _new_rows_follow_the_restored_ones(engine: Engine, new: str, dumped: dict[str, Any]
                                       ) -> None:
    """A payment taken on the restored database gets the next id and its audit row: the
    insert triggers run, as the restoring account (the source's account is not here)."""
    with engine.connect() as connection:
        row_id, net = connection.execute(text(
            "SELECT id, net_amount FROM payments WHERE public_id = :p"), {"p": new}).one()
        created = connection.execute(text(
            "SELECT action, new_value FROM payment_audit_log WHERE entity_id = :id"),
            {"id": row_id}).all()
    assert row_id > max(row[0] for row in dumped["payments"][1])
    assert net == 30 and [tuple(r) for r in created] == [("created", "awaiting_verification")]


def _guards_still_hold(engine: Engine, ids: list[str]) -> None:
    """The restored triggers and CHECK constraints refuse what they refused on the source,
    and the ones that write still write (their definer is an account this server has)."""
    assert "append-only" in refused(engine, "UPDATE payment_audit_log SET actor = 'x'")
    assert "append-only" in refused(engine, "DELETE FROM payment_audit_log")
    assert "ck_payments_status" in refused(
        engine, f"UPDATE payments SET status = 'paid_twice' WHERE public_id = '{ids[0]}'")
    with engine.connect() as connection:
        partly = connection.execute(text(
            "SELECT id FROM payments WHERE status = 'partially_refunded'")).scalar_one()
    assert "refunds would exceed" in refused(engine, (
        "INSERT INTO payment_refunds (public_id, payment_id, amount, status, requested_by, "
        f"created_at, attempts) VALUES ('re_x', {partly}, 60.01, 'pending', 'op', NOW(), 0)"))
    with engine.begin() as connection:
        waiting = connection.execute(text(
            "SELECT id FROM payments WHERE public_id = :p"), {"p": ids[3]}).scalar_one()
        connection.execute(text(
            "UPDATE payments SET status = 'verified', updated_by = 'restore-drill' "
            "WHERE id = :id"), {"id": waiting})
        moved = connection.execute(text(
            "SELECT action, old_value, new_value, actor FROM payment_audit_log "
            "WHERE entity_id = :id ORDER BY id DESC LIMIT 1"), {"id": waiting}).one()
    assert tuple(moved) == ("status_change", "awaiting_verification", "verified",
                            "restore-drill")
