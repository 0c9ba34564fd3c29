"""One amount is at most money.MAX_AMOUNT minor units (10 000 000 000,00 €): above it, every
entry point refuses it, so the sums the pages make (home, transparency, open data) cannot
overflow a 64-bit integer on SQLite or PostgreSQL. A currency is an active ISO 4217 code."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from funding.db import transaction
from funding.ledger.models import Entry
from funding.ledger.records import Record, RecordError, record_many
from funding.ledger.service import EntryDraft, LedgerError, credit, debit, post
from funding.money import MAX_AMOUNT, MoneyError, check_currency, exponent, format_plain, parse_amount
from tests.support.cli import funding as cli

TODAY = dt.date.today().isoformat()


def test_the_cap_in_every_currency():
    assert MAX_AMOUNT == 10**12 and MAX_AMOUNT * 9_000_000 < 2**63
    assert parse_amount("10 000 000 000,00") == MAX_AMOUNT
    assert parse_amount("1000000000000", "JPY") == MAX_AMOUNT
    assert parse_amount("1 000 000 000,000", "KWD") == MAX_AMOUNT
    for text, currency in (("10 000 000 000,01", "EUR"), ("1000000000001", "JPY"), ("999999999999999", "EUR"),
                           ("-10 000 000 000,01", "EUR")):
        with pytest.raises(MoneyError, match="montant trop grand"):
            parse_amount(text, currency, allow_negative=True)


def test_only_active_iso_4217_codes_are_currencies():
    for code in ("EUR", "usd", " chf ", "JPY", "KWD", "XOF", "CLF"):
        check_currency(code)
    for code in ("ABC", "XXX", "XTS", "XAU", "FRF", "DEM", "VEF", "BGN", "EU", "EURO", "", "٣٣٣", "E\x00R"):
        with pytest.raises(MoneyError, match="devise inconnue"):
            check_currency(code)
    assert (exponent("EUR"), exponent("JPY"), exponent("KWD"), exponent("CLF"), exponent("HUF")) == (2, 0, 3, 4, 2)
    assert exponent("FRF") == 2  # a code stored before the list was enforced still reads


async def test_the_ledger_refuses_a_line_above_the_cap(sessions, world):
    draft = EntryDraft(org_id=world.org_id, site_id=world.site_id, journal="OD", entry_date=dt.date.today(), label="x",
                       piece_ref="P-1", funding_source="self", lines=[debit("512", MAX_AMOUNT + 1, "EUR"),
                                                                      credit("7542", MAX_AMOUNT + 1, "EUR")])
    with pytest.raises(LedgerError, match="montant trop grand"):
        async with transaction(sessions) as session:
            await post(session, [draft])


async def test_a_made_up_currency_never_reaches_the_ledger(settings, sessions, world):
    result = await cli(settings, "ledger", "record", "patronage", "--site", world.site_slug, "--date", TODAY, "--amount",
                       "100", "--currency", "ABC", "--funder", "Fondation", "--piece", "M-1")
    assert result.exit_code != 0 and "devise inconnue : ABC" in result.stderr, result.stderr
    with pytest.raises(RecordError, match="devise inconnue"):
        async with transaction(sessions) as session:
            await record_many(session, [Record(kind="patronage", site=world.site_slug, date=TODAY, amount="1",
                                               currency="abc", funder="F", piece_ref="M-2")], created_by="test")
    async with sessions() as session:
        assert await session.scalar(select(func.count(Entry.id))) == 0


async def test_pages_that_sum_amounts_at_the_cap_answer(client, sessions, world):
    top = format_plain(MAX_AMOUNT, "EUR")
    async with transaction(sessions) as session:
        await record_many(session, [
            Record(kind="grant-notified", site=world.site_slug, date=TODAY, amount=top, funder="Région",
                   funder_siret="21630113500010", reference="CAP-1", object="Tout"),
            *[Record(kind="patronage", site=world.site_slug, date=TODAY, amount=top, funder="Fondation", piece_ref=f"M-{n}")
              for n in range(40)],
        ], created_by="test")
        with pytest.raises(RecordError, match="montant trop grand"):
            await record_many(session, [Record(kind="patronage", site=world.site_slug, date=TODAY,
                                               amount="10 000 000 000,01", funder="F", piece_ref="M-X")], created_by="t")
    for path in ("/", "/transparence", "/open-data/funding-mix.csv", "/open-data/funding-mix.json",
                 "/open-data/subventions.csv"):
        response = await client.get(path)
        assert response.status_code == 200, (path, response.status_code)


def test_a_currency_whose_iso_minor_units_babel_does_not_use_shows_its_exact_amount():
    from funding.money import format_money

    assert format_money(12345, "HUF") == "123,45\u00a0HUF" and format_money(12300, "HUF") == "123\u00a0HUF"
    assert format_money(123456, "EUR") == "1\u202f234,56\u00a0€"
