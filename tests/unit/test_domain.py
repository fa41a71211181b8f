"""Pure domain rules: money, fees, the state machine, idempotency decisions, signatures."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from service.domain import catalog
from service.domain.idempotency import Decision, StoredKey, canonical_json, decide, fingerprint
from service.domain.money import FeeSchedule, parse_amount
from service.domain.status import PaymentStatus as S
from service.domain.status import advance
from service.providers import signing


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("150", "150.00"), ("0.01", "0.01"), ("99.9", "99.90"), ("1000000000", "1000000000.00"),
     ("0150.5", "150.50")],
)
def test_amounts_parse_to_cents(raw: str, expected: str) -> None:
    assert str(parse_amount(raw)) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (150, "string"),
        ("0", "greater than zero"),
        ("-5", "not an amount"),
        ("1.005", "two decimal places"),
        ("1000000000.01", "exceed"),
        ("1" + "0" * 40, "exceed"),
        ("1.10000", "two decimal places"),
        ("1e-9", "not an amount"),
        ("1e3", "not an amount"),
        (" 5.00 ", "not an amount"),
        ("5.00\n", "not an amount"),
        ("+5", "not an amount"),
        ("1,000.00", "not an amount"),
        ("5.", "not an amount"),
        (".5", "not an amount"),
        ("\u0661\u0660\u0660", "not an amount"),  # Arabic-Indic digits
        ("\uff15", "not an amount"),  # a fullwidth 5
        ("", "not an amount"),
        ("abc", "not an amount"),
        ("NaN", "not an amount"),
        ("Infinity", "not an amount"),
        (None, "string"),
    ],
)
def test_bad_amounts_say_why(raw: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_amount(raw)


def test_fees_follow_the_catalogue() -> None:
    fees = {p.code: p.fees.fee(Decimal("200.00")) for p in catalog.PROVIDERS}
    assert fees["visa"] == Decimal("5.00")
    assert fees["bank_of_khartoum"] == Decimal("3.00")
    assert fees["zain_cash"] == Decimal("2.00")
    assert fees["cash"] == Decimal("0.00")
    assert fees["bank_transfer"] == Decimal("2.00")


def test_fee_clamps_and_never_exceeds_amount() -> None:
    schedule = FeeSchedule(Decimal("2.5"), minimum=Decimal("0.50"), maximum=Decimal("10"))
    assert schedule.fee(Decimal("1.00")) == Decimal("0.50")
    assert schedule.fee(Decimal("10000.00")) == Decimal("10.00")
    assert schedule.fee(Decimal("0.20")) == Decimal("0.20")
    with pytest.raises(ValueError, match="percent"):
        FeeSchedule(Decimal("120"))


def test_twelve_providers_with_brief_fees() -> None:
    assert len(catalog.PROVIDERS) == 12
    percent = {p.code: p.fees.percent for p in catalog.PROVIDERS}
    assert percent == {
        "visa": Decimal("2.5"),
        "mastercard": Decimal("2.5"),
        "bank_of_khartoum": Decimal("1.5"),
        "faisal_islamic": Decimal("1.5"),
        "omdurman_national": Decimal("1.5"),
        "zain_cash": Decimal("1.0"),
        "mtn_money": Decimal("1.0"),
        "sudani_cash": Decimal("1.0"),
        "bankak": Decimal("1.5"),
        "cash": Decimal("0"),
        "cheque": Decimal("0"),
        "bank_transfer": Decimal("1.0"),
    }
    assert {p.code for p in catalog.PROVIDERS if not p.electronic} == {
        "cash",
        "cheque",
        "bank_transfer",
    }


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("+249912345678", "+249912345678"),
        ("0912345678", "+249912345678"),
        ("00249 99 123 4567", "+249991234567"),
    ],
)
def test_phone_numbers_normalise(raw: str, normal: str) -> None:
    assert catalog.normalise_phone(raw) == normal


@pytest.mark.parametrize("raw", ["12345", "+20912345678", "+2498123456789", "abc"])
def test_bad_phone_numbers_are_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="Sudanese mobile number"):
        catalog.normalise_phone(raw)


def test_state_machine_never_moves_backwards() -> None:
    assert advance(S.PROCESSING, S.CONFIRMED) == S.CONFIRMED
    assert advance(S.CONFIRMED, S.PROCESSING) is None
    assert advance(S.CONFIRMED, S.FAILED) is None
    assert advance(S.FAILED, S.CONFIRMED) is None
    assert advance(S.UNKNOWN, S.CONFIRMED) == S.CONFIRMED
    assert advance(S.UNKNOWN, S.PENDING) is None


def test_a_known_status_is_never_overwritten_with_unknown() -> None:
    for status in S:
        assert advance(status, S.UNKNOWN) is None or status in (S.PENDING, S.PROCESSING)
    assert advance(S.CONFIRMED, S.UNKNOWN) is None
    assert advance(S.AWAITING_VERIFICATION, S.UNKNOWN) is None


NOW = datetime(2026, 11, 26, 12, 0, 0)


def _stored(hash_: str = "h", completed: bool = False, lock: int = 30) -> StoredKey:
    return StoredKey(hash_, completed, NOW + timedelta(seconds=lock), NOW + timedelta(hours=24))


@pytest.mark.parametrize(
    ("stored", "decision"),
    [
        (None, Decision.NEW),
        (_stored(completed=True), Decision.REPLAY),
        (_stored("other", completed=True), Decision.MISMATCH),
        (_stored(), Decision.CONFLICT),
        (_stored(lock=-1), Decision.RECOVER),
        (StoredKey("h", True, NOW, NOW - timedelta(seconds=1)), Decision.NEW),
    ],
)
def test_idempotency_decisions(stored: StoredKey | None, decision: Decision) -> None:
    assert decide(stored, "h", NOW) == decision


def test_fingerprint_depends_on_body_and_path() -> None:
    assert fingerprint("POST", "/a", "1") != fingerprint("POST", "/a", "2")
    assert fingerprint("POST", "/a", "1") != fingerprint("POST", "/b", "1")


def test_canonical_json_ignores_key_order_and_whitespace() -> None:
    one = json.loads('{"b": [1, {"y": 2, "x": "\u00e9"}],   "a": "1.00"}')
    two = json.loads('{"a":"1.00","b":[1,{"x":"é","y":2}]}')
    assert canonical_json(one) == canonical_json(two)
    assert canonical_json({"a": "1.00"}) != canonical_json({"a": "1.0"})


def test_signatures_verify_and_reject() -> None:
    header = signing.sign("k" * 32, b'{"a":1}', 1_000_000)
    assert signing.verify("k" * 32, header, b'{"a":1}', 1_000_100, 300) == 1_000_000
    with pytest.raises(signing.SignatureError, match="does not match"):
        signing.verify("k" * 32, header, b'{"a":2}', 1_000_100, 300)
    with pytest.raises(signing.SignatureError, match="tolerance"):
        signing.verify("k" * 32, header, b'{"a":1}', 1_000_301, 300)
    with pytest.raises(signing.SignatureError, match="tolerance"):
        signing.verify("k" * 32, header, b'{"a":1}', 999_699, 300)
    with pytest.raises(signing.SignatureError, match="missing"):
        signing.verify("k" * 32, None, b"", 0, 300)
    with pytest.raises(signing.SignatureError, match="malformed"):
        signing.verify("k" * 32, "garbage", b"", 0, 300)
