"""The twelve payment providers NileCare accepts: the one catalogue every other list is derived
from (payment_providers rows, settings and env.example, the deployment's secrets and
environment, the simulator, the metrics, the API's provider list). Adding a provider is one
entry here plus, for an electronic one, the adapter family its type selects."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from service.domain import patterns
from service.domain.money import FeeSchedule


class ProviderType(StrEnum):
    BANK_CARD = "bank_card"
    LOCAL_BANK = "local_bank"
    MOBILE_WALLET = "mobile_wallet"
    DIGITAL_WALLET = "digital_wallet"
    CASH = "cash"
    CHEQUE = "cheque"
    BANK_TRANSFER = "bank_transfer"


class Verification(StrEnum):
    AUTOMATIC = "automatic"  # the provider's API settles it
    MANUAL = "manual"  # a finance user confirms it
    HYBRID = "hybrid"  # a bank-statement match or a finance user


@dataclass(frozen=True)
class Credentials:
    """What an electronic provider's API is reached with: its group's variables
    <GROUP>_API_KEY, <GROUP>_API_SECRET (both secrets), <GROUP>_MERCHANT_ID and <GROUP>_API_URL.
    Providers behind one API share a group: Visa and Mastercard go through the card gateway."""

    group: str
    label: str  # what the group is, for env.example and the deployment's secret descriptions
    secret_name: str | None = None  # the card gateway's secret predates the pattern

    @property
    def api_key(self) -> str:
        return f"{self.group}_api_key"

    @property
    def api_secret(self) -> str:
        return self.secret_name or f"{self.group}_api_secret"

    @property
    def merchant_id(self) -> str:
        return f"{self.group}_merchant_id"

    @property
    def api_url(self) -> str:
        return f"{self.group}_api_url"

    @property
    def secrets(self) -> tuple[str, str]:
        return (self.api_key, self.api_secret)


CARD_GATEWAY = Credentials(
    "gateway", "Card gateway", secret_name="gateway_secret")  # noqa: S106 - a variable name


@dataclass(frozen=True)
class ProviderSpec:
    code: str
    display_name: str
    type: ProviderType
    currencies: tuple[str, ...]
    fees: FeeSchedule
    min_amount: Decimal
    max_amount: Decimal
    verification: Verification
    credentials: Credentials | None = None  # None: finance staff verify it, no API

    @property
    def electronic(self) -> bool:
        return self.verification == Verification.AUTOMATIC

    @property
    def needs_phone(self) -> bool:
        return self.type in (ProviderType.MOBILE_WALLET, ProviderType.DIGITAL_WALLET)


def _p(
    code: str,
    name: str,
    kind: ProviderType,
    currencies: tuple[str, ...],
    percent: str,
    verification: Verification = Verification.AUTOMATIC,
    *,
    minimum: str = "0",
    maximum: str | None = None,
    min_amount: str = "1.00",
    max_amount: str = "5000000.00",
    credentials: Credentials | None = None,
) -> ProviderSpec:
    fees = FeeSchedule(
        Decimal(percent),
        Decimal("0"),
        Decimal(minimum),
        Decimal(maximum) if maximum is not None else None,
    )
    if credentials is None and verification == Verification.AUTOMATIC:
        credentials = Credentials(code, name)
    return ProviderSpec(code, name, kind, currencies, fees, Decimal(min_amount),
                        Decimal(max_amount), verification, credentials)


T, V = ProviderType, Verification
PROVIDERS: tuple[ProviderSpec, ...] = (
    _p("visa", "Visa", T.BANK_CARD, ("SDG", "USD"), "2.5", minimum="0.50",
       credentials=CARD_GATEWAY),
    _p("mastercard", "Mastercard", T.BANK_CARD, ("SDG", "USD"), "2.5", minimum="0.50",
       credentials=CARD_GATEWAY),
    _p("bank_of_khartoum", "Bank of Khartoum", T.LOCAL_BANK, ("SDG",), "1.5", maximum="5000.00"),
    _p("faisal_islamic", "Faisal Islamic Bank", T.LOCAL_BANK, ("SDG",), "1.5", maximum="5000.00"),
    _p(
        "omdurman_national",
        "Omdurman National Bank",
        T.LOCAL_BANK,
        ("SDG",),
        "1.5",
        maximum="5000.00",
    ),
    _p("zain_cash", "Zain Cash", T.MOBILE_WALLET, ("SDG",), "1.0", max_amount="500000.00"),
    _p("mtn_money", "MTN Mobile Money", T.MOBILE_WALLET, ("SDG",), "1.0", max_amount="500000.00"),
    _p("sudani_cash", "Sudani Cash", T.MOBILE_WALLET, ("SDG",), "1.0", max_amount="500000.00"),
    _p("bankak", "Bankak (BOK mobile)", T.DIGITAL_WALLET, ("SDG",), "1.5", max_amount="1000000.00"),
    _p("cash", "Cash at the cashier", T.CASH, ("SDG", "USD"), "0", V.MANUAL),
    _p("cheque", "Cheque", T.CHEQUE, ("SDG",), "0", V.MANUAL),
    _p("bank_transfer", "Bank transfer", T.BANK_TRANSFER, ("SDG", "USD"), "1.0", V.HYBRID),
)
BY_CODE: dict[str, ProviderSpec] = {p.code: p for p in PROVIDERS}


def credential_groups(providers: tuple[ProviderSpec, ...] | None = None) -> list[Credentials]:
    """Each credential group once, in catalogue order (read at call time, so a test that
    adds a provider to PROVIDERS sees it here)."""
    found: dict[str, Credentials] = {}
    for spec in PROVIDERS if providers is None else providers:
        if spec.credentials is not None:
            found.setdefault(spec.credentials.group, spec.credentials)
    return list(found.values())

# Sudanese mobile numbers: +249 then 9 digits starting 9 or 1 (Zain 91/96, MTN 92/99,
# Sudani 90/12 …); a local 0-prefixed form is accepted and normalised.
PHONE_PREFIXES = ("+249", "00249", "0")
_PHONE = re.compile("(?:" + "|".join(re.escape(p) for p in PHONE_PREFIXES) + ")([19][0-9]{8})")
# The same rule for the OpenAPI document: spaces and dashes anywhere, as normalise_phone takes.
PHONE_PATTERN = patterns.separated(
    "(?:" + "|".join(patterns.SEPARATORS.join(patterns.literal(p)) for p in PHONE_PREFIXES)
    + ")", "[19]", *["[0-9]"] * 8)


def normalise_phone(raw: str) -> str:
    """`+2499XXXXXXXX`, or ValueError naming the expected form."""
    match = _PHONE.fullmatch(raw.replace(" ", "").replace("-", ""))
    if match is None:
        raise ValueError("must be a Sudanese mobile number such as +249912345678")
    return f"+249{match.group(1)}"
