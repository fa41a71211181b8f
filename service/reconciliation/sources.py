"""Where bank statements come from: a directory or an S3 prefix laid out as
<bank_code>/<file>.csv with an optional banks.json beside them, each file read as a
stream of byte blocks (never whole into memory).

The default CSV format has the header `value_date,amount,currency,reference,description`
with ISO dates; another bank's format is described in banks.json, e.g.
`{"faisal_islamic": {"value_date": "Date", "amount": "Credit", "reference": "Ref",
"date_format": "%d/%m/%Y", "delimiter": ";", "currency_default": "SDG"}}`.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Protocol

BLOCK = 1 << 20  # bytes read at a time
FORMATS_FILE = "banks.json"


@dataclass(frozen=True)
class BankFormat:
    """Which CSV column holds what, for one bank."""

    value_date: str = "value_date"
    amount: str = "amount"
    currency: str = "currency"
    reference: str = "reference"
    description: str = "description"
    date_format: str = "%Y-%m-%d"
    delimiter: str = ","
    currency_default: str | None = None
    # The facility whose account this is: reconciliation issues about money no payment
    # explains belong to it (without it, only admins see them).
    facility_id: str | None = None

    @classmethod
    def from_mapping(cls, bank: str, raw: dict[str, Any]) -> BankFormat:
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"banks.json: {bank} has unknown keys {sorted(unknown)}; "
                             f"known are {sorted(known)}")
        return cls(**raw)


def parse_formats(text: str) -> dict[str, BankFormat]:
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("banks.json must be an object keyed by bank code")
    return {bank: BankFormat.from_mapping(bank, raw) for bank, raw in data.items()}


class Source(Protocol):
    """One statement file."""

    @property
    def bank(self) -> str: ...

    @property
    def location(self) -> str: ...  # a path or an s3:// URL, kept in bank_statements.source

    def blocks(self) -> Iterator[bytes]: ...


class Inbox(Protocol):
    """A place statements arrive in."""

    def formats(self) -> dict[str, BankFormat]: ...

    def sources(self) -> Iterator[Source]: ...


@dataclass(frozen=True)
class FileSource:
    path: Path

    @property
    def bank(self) -> str:
        return self.path.parent.name

    @property
    def location(self) -> str:
        return str(self.path)

    def blocks(self) -> Iterator[bytes]:
        with self.path.open("rb") as handle:
            yield from iter(lambda: handle.read(BLOCK), b"")


@dataclass(frozen=True)
class DirectoryInbox:
    directory: Path

    def formats(self) -> dict[str, BankFormat]:
        path = self.directory / FORMATS_FILE
        return parse_formats(path.read_text(encoding="utf-8")) if path.exists() else {}

    def sources(self) -> Iterator[Source]:
        if self.directory.is_dir():
            for path in sorted(self.directory.glob("*/*.csv")):
                yield FileSource(path)


class BlockReader(io.RawIOBase):
    """A readable binary stream over an iterator of byte blocks, so csv can read an S3 body
    (or any stream) through io.TextIOWrapper one buffer at a time."""

    def __init__(self, blocks: Iterator[bytes]) -> None:
        self._blocks = blocks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                self._pending = next(self._blocks)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def text(source: Source) -> io.TextIOWrapper:
    """The statement as text (UTF-8, a byte-order mark dropped), newline='' for csv."""
    return io.TextIOWrapper(io.BufferedReader(BlockReader(source.blocks()), BLOCK),
                            encoding="utf-8-sig", newline="")
