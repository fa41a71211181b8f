"""Statements from S3: a real S3-compatible server (moto_server) on 127.0.0.1, listed
under the prefix, mapped per bank by banks.json in the bucket, streamed in blocks, and
imported once per checksum."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, insert, select

from service.clock import utcnow
from service.db.models import BankStatement, BankStatementLine, Payment
from service.reconciliation import runner, statements
from service.reconciliation import s3 as statement_s3
from service.reconciliation.sources import BLOCK
from service.services.context import Context
from service.settings import load
from tests.servers import free_port

BUCKET = "nilecare-statements"


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as handle:
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p",
             str(port)], stdout=handle, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{url}/moto-api/", timeout=1)
            break
        except httpx.HTTPError:
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "moto_server did not start"
            time.sleep(0.1)
    yield url
    server.terminate()
    server.wait(10)


@pytest.fixture
def s3_env(worker_env: dict[str, str], s3_endpoint: str) -> dict[str, str]:
    env = {**worker_env, "AWS_S3_BUCKET": BUCKET, "AWS_S3_PREFIX": "statements/",
           "AWS_ENDPOINT_URL": s3_endpoint, "AWS_REGION": "af-south-1",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    s3 = statement_s3.client(load(env))
    existing = [b["Name"] for b in s3.list_buckets().get("Buckets", [])]
    if BUCKET in existing:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            for item in page.get("Contents", ()):
                s3.delete_object(Bucket=BUCKET, Key=item["Key"])
    else:
        s3.create_bucket(Bucket=BUCKET,
                         CreateBucketConfiguration={"LocationConstraint": "af-south-1"})
    return env


def _payments(ctx: Context, day: date, count: int) -> list[dict[str, Any]]:
    booked = datetime.combine(day, datetime.min.time()) + timedelta(hours=9)
    rows = [{"public_id": f"pay_s3_{n}", "reference": f"NC-S3-{n:06d}",
             "provider_code": "bank_transfer", "facility_id": "fac-1", "patient_id": "p",
             "amount": Decimal(500 + n), "currency": "SDG", "total_fees": Decimal(0),
             "net_amount": Decimal(0), "refunded_amount": Decimal(0),
             "status": "awaiting_verification", "created_by": "t", "updated_by": "t",
             "created_at": booked, "updated_at": utcnow(), "check_attempts": 0}
            for n in range(count)]
    with ctx.sessions.begin() as session:
        session.execute(insert(Payment), rows)
    return rows


def _csv(rows: list[list[str]], delimiter: str = ",") -> bytes:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode()


def test_statements_are_listed_streamed_and_imported_once_from_s3(
        ctx: Context, s3_env: dict[str, str]) -> None:
    settings = load(s3_env)
    day = date.today() - timedelta(days=4)
    paid = _payments(ctx, day, 10_000)
    s3 = statement_s3.client(settings)
    # Bank of Khartoum in the default format, large enough to arrive in several blocks.
    khartoum = _csv([["value_date", "amount", "currency", "reference", "description"],
                     *([str(day), str(p["amount"]), "SDG", str(p["reference"]),
                        "transfer " + "x" * 80] for p in paid[:9_990])])
    assert len(khartoum) > BLOCK
    # Faisal Islamic in its own format, mapped by banks.json in the bucket.
    faisal = _csv([["Date", "Credit", "Ref", "Narrative"],
                   *([day.strftime("%d/%m/%Y"), f"{p['amount']:,}", str(p["reference"]), "in"]
                     for p in paid[9_990:])], delimiter=";")
    mapping = {"faisal_islamic": {"value_date": "Date", "amount": "Credit", "reference": "Ref",
                                  "description": "Narrative", "date_format": "%d/%m/%Y",
                                  "delimiter": ";", "currency_default": "SDG"}}
    put = {f"statements/bank_of_khartoum/{day}.csv": khartoum,
           f"statements/faisal_islamic/FIB-{day:%Y%m%d}.csv": faisal,
           "statements/banks.json": json.dumps(mapping).encode(),
           "statements/README.txt": b"not a statement",
           f"archive/bank_of_khartoum/{day}.csv": khartoum}  # outside the prefix
    for key, body in put.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)

    result = runner.run(ctx.sessions, statements.inbox_for(settings))
    assert result.lines == 10_000 and result.matched == 10_000 and not result.issues
    with ctx.sessions() as session:
        found = sorted(session.execute(
            select(BankStatement.bank_code, BankStatement.source, BankStatement.line_count,
                   BankStatement.status)).tuples())
        confirmed = session.scalar(select(func.count()).select_from(Payment)
                                   .where(Payment.status == "confirmed"))
    assert found == [
        ("bank_of_khartoum", f"s3://{BUCKET}/statements/bank_of_khartoum/{day}.csv", 9_990,
         "reconciled"),
        ("faisal_islamic", f"s3://{BUCKET}/statements/faisal_islamic/FIB-{day:%Y%m%d}.csv", 10,
         "reconciled")]
    assert confirmed == 10_000

    # The same bytes again, under another name: the checksum says it is known.
    s3.put_object(Bucket=BUCKET, Key=f"statements/bank_of_khartoum/{day}-copy.csv",
                  Body=khartoum)
    again = runner.run(ctx.sessions, statements.inbox_for(settings))
    assert again.lines == 0
    with ctx.sessions() as session:
        assert session.scalar(select(func.count()).select_from(BankStatement)) == 2
        assert session.scalar(select(func.count()).select_from(BankStatementLine)) == 10_000
