"""Money: an integer count of minor units plus an ISO 4217 currency. Never a float."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from decimal import Decimal

from babel.numbers import format_currency, get_currency_precision

from funding.errors import FundingError
from funding.iso4217 import MINOR_UNITS

_SPACES = re.compile(r"[\s\u00a0\u202f']")


class MoneyError(FundingError, ValueError):
    """A malformed amount or currency; the message is meant for the person who typed it."""


# The most one amount may be, in minor units (10 000 000 000,00 € in euros): far above any grant,
# invoice or pledge, and low enough that the sum of nine million amounts at the cap still fits a
# signed 64-bit integer — what SQLite's SUM and a PostgreSQL BIGINT hold. Every amount that enters
# (forms, CSV, CLI, API) is read by parse_amount, and the ledger refuses a line above it.
MAX_AMOUNT = 10**12


def check_currency(code: str) -> str:
    """An active ISO 4217 code (funding.iso4217), upper-cased; anything else is refused."""
    code = str(code or "").strip().upper()
    if code not in MINOR_UNITS:
        shown = code if code.isascii() and code.isprintable() else repr(code)
        raise MoneyError(f"devise inconnue : {shown[:12] or '(vide)'} (un code ISO 4217, par exemple EUR)")
    return code


def exponent(currency: str) -> int:
    """Digits after the decimal point: 2 for EUR, 0 for JPY, 3 for KWD (ISO 4217's minor units).
    A code outside the active list (one stored before the list was enforced) keeps Babel's answer."""
    code = currency.upper()
    digits = MINOR_UNITS.get(code)
    return get_currency_precision(code) if digits is None else digits


@dataclass(frozen=True, slots=True)
class Money:
    amount: int
    currency: str

    def __post_init__(self):
        if not isinstance(self.amount, int) or isinstance(self.amount, bool):
            raise TypeError(f"Money.amount must be an int of minor units, got {type(self.amount).__name__}")

    def _same(self, other: Money) -> None:
        if not isinstance(other, Money) or other.currency != self.currency:
            raise MoneyError(f"cannot mix {self.currency} with {getattr(other, 'currency', other)!r}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def decimal(self) -> Decimal:
        return Decimal(self.amount).scaleb(-exponent(self.currency))

    def format(self, locale: str = "fr") -> str:
        return format_money(self.amount, self.currency, locale)

    @classmethod
    def parse(cls, text: str, currency: str = "EUR", *, allow_negative: bool = False) -> Money:
        return cls(parse_amount(text, currency, allow_negative=allow_negative), check_currency(currency))


def format_money(amount: int, currency: str, locale: str = "fr") -> str:
    """``123456, 'EUR', 'fr'`` → ``1 234,56 €`` (with the narrow no-break space French uses)."""
    return _format_money(int(amount), currency.upper(), locale)


@functools.lru_cache(maxsize=16384)
def _format_money(amount: int, currency: str, locale: str) -> str:
    # Babel's formatting costs tens of microseconds; a batch of receipts formats the same
    # prices, tiers and totals again and again.
    value = Decimal(amount).scaleb(-exponent(currency))
    # Where CLDR shows fewer digits than ISO 4217 counts (HUF, COP, IDR…), show the exact amount
    # rather than let Babel round it to CLDR's digits.
    exact = exponent(currency) > get_currency_precision(currency)
    return format_currency(value, currency, locale=_babel_locale(locale), decimal_quantization=not exact)


def format_plain(amount: int, currency: str) -> str:
    """Accounting notation: decimal comma, no thousands separator (``-1234,56``)."""
    exp = exponent(currency)
    sign = "-" if amount < 0 else ""
    units, minor = divmod(abs(int(amount)), 10**exp)
    return f"{sign}{units},{minor:0{exp}d}" if exp else f"{sign}{units}"


def parse_amount(text: str, currency: str = "EUR", *, allow_negative: bool = False) -> int:
    """Read what a person types (``1 234,56``, ``1234.5``, ``12 €``) into minor units."""
    currency = check_currency(currency)
    raw = _SPACES.sub("", str(text or "")).replace("€", "")
    if raw.upper().endswith(currency):
        raw = raw[: -len(currency)]
    negative = raw.startswith("-")
    if negative:
        raw = raw[1:]
    exp = exponent(currency)
    pattern = rf"(\d{{1,15}})(?:[.,](\d{{1,{exp}}}))?" if exp else r"(\d{1,15})"
    match = re.fullmatch(pattern, raw, re.ASCII)  # "٣" is a digit to Python, not to an accountant
    if not match:
        shown = str(text).strip() or "(vide)"
        if exp and re.fullmatch(r"\d+[.,]\d+", raw, re.ASCII):
            raise MoneyError(f"montant invalide : {shown} (au plus {exp} décimales en {currency})")
        raise MoneyError(f"montant invalide : {shown}")
    if negative and not allow_negative:
        raise MoneyError(f"le montant doit être positif : {str(text).strip()}")
    units, fraction = match.group(1), (match.group(2) or "") if exp else ""
    value = int(units) * 10**exp + (int(fraction.ljust(exp, "0")) if fraction else 0)
    if value > MAX_AMOUNT:
        raise MoneyError(f"montant trop grand : {str(text).strip()[:40]} (au plus {format_plain(MAX_AMOUNT, currency)})")
    return -value if negative else value


def _babel_locale(locale: str) -> str:
    return {"fr": "fr_FR", "en": "en_GB"}.get(locale, locale)


def proportional_shares(total: int, weights: dict[int, int]) -> dict[int, int]:
    """``total`` split in proportion to ``weights`` (largest remainders), to the cent."""
    whole = sum(weights.values())
    if not whole:
        return {}
    exact = {k: total * w for k, w in weights.items()}
    out = {k: v // whole for k, v in exact.items()}
    for k in sorted(weights, key=lambda k: (-(exact[k] % whole), k))[: total - sum(out.values())]:
        out[k] += 1
    return out
