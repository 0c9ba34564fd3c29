from decimal import Decimal

import pytest

from funding.money import Money, MoneyError, format_money, format_plain, parse_amount

NNBSP = "\u202f"  # French thousands separator
NBSP = "\u00a0"


@pytest.mark.parametrize(
    "text, currency, expected",
    [
        ("1 234,56", "EUR", 123456),
        ("1234.5", "EUR", 123450),
        ("12 €", "EUR", 1200),
        (f"1{NNBSP}234,56{NBSP}€", "EUR", 123456),
        ("0,01", "EUR", 1),
        ("1500", "JPY", 1500),
        ("1,234", "KWD", 1234),
        ("10 EUR", "eur", 1000),
    ],
)
def test_parse_amount(text, currency, expected):
    assert parse_amount(text, currency) == expected


@pytest.mark.parametrize("text", ["", "abc", "1,2,3", "1.234,56", "12,345", "1e3", "--1", "1500,5 JPY"])
def test_parse_amount_refuses_what_it_cannot_read_exactly(text):
    with pytest.raises(MoneyError):
        parse_amount(text, "JPY" if "JPY" in text else "EUR")


def test_negative_amounts_only_when_allowed():
    with pytest.raises(MoneyError, match="positif"):
        parse_amount("-5", "EUR")
    assert parse_amount("-5", "EUR", allow_negative=True) == -500


def test_french_formatting_reads_like_french():
    assert format_money(123456, "EUR", "fr") == f"1{NNBSP}234,56{NBSP}€"
    assert format_money(-5, "EUR", "fr") == f"-0,05{NBSP}€"
    assert format_money(123456, "EUR", "en") == "€1,234.56"
    assert format_money(1500, "JPY", "fr") == f"1{NNBSP}500{NBSP}JPY"
    assert format_plain(-123456, "EUR") == "-1234,56" and format_plain(7, "EUR") == "0,07"


def test_money_is_integer_minor_units_only():
    with pytest.raises(TypeError):
        Money(12.5, "EUR")
    assert Money(100, "EUR") + Money(5, "EUR") == Money(105, "EUR")
    assert Money(150, "EUR").decimal() == Decimal("1.50")
    with pytest.raises(MoneyError):
        Money(1, "EUR") + Money(1, "USD")
    with pytest.raises(MoneyError):
        Money.parse("1", "XX")
