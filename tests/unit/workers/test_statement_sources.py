"""Statements read as streams of byte blocks: the same rows whatever the block size."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import pytest

from service.reconciliation.sources import BankFormat, parse_formats
from service.reconciliation.statements import checksum, rows

STATEMENT = (
    "\ufeffvalue_date,amount,currency,reference,description\r\n"
    "2025-01-30,\"1,250.50\",sdg,NC-1,\"تحويل من مستشفى\"\r\n"
    "2025-01-31,99.00,SDG,,\"two\r\nlines\"\r\n"
).encode()


@dataclass(frozen=True)
class Blocks:
    data: bytes
    size: int
    bank: str = "bank_of_khartoum"
    location: str = "memory://statement.csv"

    def blocks(self) -> Iterator[bytes]:
        for start in range(0, len(self.data), self.size):
            yield self.data[start:start + self.size]


@pytest.mark.parametrize("size", [1, 3, 7, 64, 1 << 20])
def test_rows_do_not_depend_on_where_the_blocks_split(size: int) -> None:
    found = list(rows(Blocks(STATEMENT, size), BankFormat()))
    assert [(r["line_no"], r["value_date"], r["amount"], r["currency"], r["reference"])
            for r in found] == [(1, date(2025, 1, 30), Decimal("1250.50"), "SDG", "NC-1"),
                                (2, date(2025, 1, 31), Decimal("99.00"), "SDG", None)]
    assert found[0]["description"] == "تحويل من مستشفى"
    assert found[1]["description"] == "two\r\nlines"
    assert checksum(Blocks(STATEMENT, size).blocks()) == checksum([STATEMENT])


def test_a_bad_line_is_named_by_file_and_line() -> None:
    bad = b"value_date,amount,currency,reference\n2025-01-30,12x,SDG,NC-1\n"
    with pytest.raises(ValueError, match=r"statement.csv line 2: cannot read"):
        list(rows(Blocks(bad, 4), BankFormat()))


@pytest.mark.parametrize("amount, currency", [
    ("NaN", "SDG"), ("sNaN", "SDG"), ("Infinity", "SDG"), ("1e16", "SDG"),
    ("-99999999999999999", "SDG"), ("9999999999999999.995", "SDG"), ("1e30", "SDG"),
    ("10.00", "SDGX")])
def test_a_line_the_columns_cannot_hold_is_a_bad_line(amount: str, currency: str) -> None:
    # Not a database error at insert time, which would stop the whole run: the file is
    # named as bad, and the run goes on with the others.
    bad = f"value_date,amount,currency,reference\n2025-01-30,{amount},{currency},NC-1\n"
    with pytest.raises(ValueError, match=r"statement.csv line 2: cannot read"):
        list(rows(Blocks(bad.encode(), 8), BankFormat()))


@pytest.mark.parametrize("amount, cents", [
    ("9999999999999999.99", "9999999999999999.99"),
    ("-9999999999999999.99", "-9999999999999999.99"),
    ("12.345", "12.35"), ("-12.345", "-12.35"), ("12.344", "12.34"), ("100.000", "100.00"),
    ("1e3", "1000.00"), ("1e-50000000", "0.00"), ("1,250.5", "1250.50")])
def test_amounts_are_read_in_cents_as_the_column_stores_them(amount: str, cents: str) -> None:
    # Half away from zero, as MySQL rounds what it stores; a tiny exponent is 0.00, never a
    # literal of millions of digits.
    fine = f'value_date,amount,currency,reference\n2025-01-30,"{amount}",SDG,NC-1\n'
    [line] = rows(Blocks(fine.encode(), 8), BankFormat())
    assert (line["amount"], str(line["amount"])) == (Decimal(cents), cents)


def test_a_field_csv_cannot_read_is_a_bad_line() -> None:
    huge = "x" * 200_000  # over csv's field size limit
    bad = (f"value_date,amount,currency,reference\n2025-01-30,1.00,SDG,NC-1\n"
           f"2025-01-30,1.00,SDG,{huge}\n")
    found = rows(Blocks(bad.encode(), 4096), BankFormat())
    assert next(found)["reference"] == "NC-1"
    with pytest.raises(ValueError, match=r"statement.csv line 3: cannot read .*field larger"):
        next(found)


def test_banks_json_names_an_unknown_key() -> None:
    with pytest.raises(ValueError, match="faisal_islamic has unknown keys"):
        parse_formats('{"faisal_islamic": {"amount_column": "Credit"}}')


def test_blank_lines_are_skipped_and_references_compared_upper_case() -> None:
    data = (b"value_date,amount,currency,reference\n\n2025-01-30,10.00,sdg,nc-7f\n\n"
            b"2025-01-31,12x,SDG,NC-1\n")
    found = rows(Blocks(data, 5), BankFormat())
    first = next(found)
    assert (first["line_no"], first["currency"], first["reference"]) == (1, "SDG", "NC-7F")
    # A later bad line is named by the file's own line number, blank lines counted.
    with pytest.raises(ValueError, match=r"statement.csv line 5: cannot read"):
        next(found)
