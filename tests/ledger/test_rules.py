"""The ledger's rules, enforced by the code and again by the database."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError

from funding.db import transaction
from funding.ledger.models import Entry, LedgerHead, Posting
from funding.ledger.service import (
    EntryDraft,
    LedgerError,
    Line,
    close_month,
    credit,
    debit,
    post,
    reverse,
    trial_balance,
)
from funding.ledger.verify import verify_org
from tests.support.world import gift, post_gift

TODAY = dt.date.today()
LAST_MONTH_DAY = TODAY.replace(day=1) - dt.timedelta(days=1)


async def raw_draft(session, world, amounts=(100, -100), accounts=("512", "706"), day=TODAY) -> Entry:
    """A draft written straight to the tables, bypassing the service: what the database alone must guard."""
    entry = Entry(org_id=world.org_id, site_id=world.site_id, journal_code="OD", entry_date=day, label="x",
                  piece_ref="x", piece_date=day, funding_source="self")
    session.add(entry)
    await session.flush()
    session.add_all([Posting(entry_id=entry.id, org_id=world.org_id, line_no=n, account_number=account, amount=amount,
                             currency="EUR") for n, (account, amount) in enumerate(zip(accounts, amounts, strict=True), start=1)])
    await session.flush()
    return entry


async def raw_validate(session, entry: Entry, number: int, prev_hash: str = "0" * 64) -> None:
    await session.execute(update(Entry).where(Entry.id == entry.id).values(
        number=number, prev_hash=prev_hash, hash="f" * 64, validated_at=dt.datetime.now()))


async def test_a_gift_is_numbered_chained_and_balanced(sessions, world, engine):
    first = await post_gift(sessions, world, key="ch_1")
    second = await post_gift(sessions, world, key="ch_2")
    assert (first.number, second.number) == (1, 2)
    async with sessions() as session:
        entries = (await session.scalars(select(Entry).order_by(Entry.number))).all()
        head = await session.get(LedgerHead, world.org_id)
    assert entries[1].prev_hash == entries[0].hash
    assert head.last_number == 2 and head.last_hash == entries[1].hash
    async with engine.connect() as conn:
        report = await verify_org(conn, world.org_id)
    assert report.ok, report.problems
    assert (report.entries, report.postings) == (2, 6)


async def test_unbalanced_entry_is_refused_and_nothing_is_written(sessions, world):
    draft = gift(world)
    draft.lines[0] = Line("5115", 4899)
    with pytest.raises(LedgerError, match="déséquilibrée"):
        async with transaction(sessions) as session:
            await post(session, draft)
    async with sessions() as session:
        assert await session.scalar(select(Entry.id)) is None


async def test_unknown_account_is_refused(sessions, world):
    draft = gift(world)
    draft.lines[2] = credit("75499", 5000)
    with pytest.raises(LedgerError, match="compte inconnu ou inactif : 75499"):
        async with transaction(sessions) as session:
            await post(session, draft)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: setattr(d, "lines", d.lines[:1]), "au moins deux lignes"),
        (lambda d: setattr(d, "journal", "XX"), "journal inconnu"),
        (lambda d: setattr(d, "funding_source", "lottery"), "origine des fonds inconnue"),
        (lambda d: setattr(d, "label", "  "), "libellé"),
        (lambda d: setattr(d, "entry_date", TODAY + dt.timedelta(days=1)), "date future"),
        (lambda d: d.lines.__setitem__(0, Line("5115", 48.5)), "non entier"),  # a float never gets in
        (lambda d: d.lines.append(Line("512", 0)), "ligne à zéro"),
        (lambda d: d.lines.__setitem__(0, Line("5115", 4900, "E1R")), "devise"),
    ],
)
async def test_malformed_entries_are_refused(sessions, world, change, message):
    draft = gift(world)
    change(draft)
    with pytest.raises(LedgerError, match=message):
        async with transaction(sessions) as session:
            await post(session, draft)


async def test_database_refuses_an_unbalanced_validation_even_without_the_code(sessions, world):
    async with sessions() as session:
        entry = await raw_draft(session, world, amounts=(100, -99))
        with pytest.raises(DBAPIError, match="unbalanced"):
            await raw_validate(session, entry, 1)


async def test_database_refuses_an_unknown_account_and_a_skipped_number(sessions, world):
    async with sessions() as session:
        entry = Entry(org_id=world.org_id, site_id=world.site_id, journal_code="OD", entry_date=TODAY, label="x",
                      piece_ref="x", piece_date=TODAY, funding_source="self")
        session.add(entry)
        await session.flush()
        session.add(Posting(entry_id=entry.id, org_id=world.org_id, line_no=1, account_number="999999", amount=1, currency="EUR"))
        with pytest.raises(DBAPIError):
            await session.flush()
    async with sessions() as session:
        entry = await raw_draft(session, world)
        with pytest.raises(DBAPIError, match="gap-free"):
            await raw_validate(session, entry, 2)


@pytest.mark.parametrize(
    "numbers, second_prev, message",
    [((1, 3), "a", "gap-free"), ((1, 1), "a", "gap-free|uq_entries_org_id_number"), ((1, 2), "0", "not chained")],
    ids=["a gap inside the batch", "the same number twice", "a broken link inside the batch"],
)
async def test_database_checks_every_entry_of_a_validation_made_in_one_statement(sessions, world, numbers, second_prev, message):
    """On PostgreSQL one statement's validations are checked together, after the rows: each still counts."""
    async with sessions() as session:
        first, second = await raw_draft(session, world), await raw_draft(session, world)
        statement = text(
            "UPDATE entries SET number = CASE WHEN id = :a THEN CAST(:na AS BIGINT) ELSE CAST(:nb AS BIGINT) END, "
            "prev_hash = CASE WHEN id = :a THEN :pa ELSE :pb END, "
            "hash = CASE WHEN id = :a THEN :ha ELSE :hb END, validated_at = :now WHERE id IN (:a, :b)")
        with pytest.raises(DBAPIError, match=message):
            await session.execute(statement, {"a": first.id, "b": second.id, "na": numbers[0], "nb": numbers[1],
                                              "pa": "0" * 64, "pb": second_prev * 64, "ha": "a" * 64, "hb": "b" * 64,
                                              "now": dt.datetime.now()})
    async with sessions() as session:
        first, second = await raw_draft(session, world), await raw_draft(session, world)
        await session.execute(statement, {"a": first.id, "b": second.id, "na": 1, "nb": 2, "pa": "0" * 64, "pb": "a" * 64,
                                          "ha": "a" * 64, "hb": "b" * 64, "now": dt.datetime.now()})
        head = await session.get(LedgerHead, world.org_id)
        assert (head.last_number, head.last_hash) == (2, "b" * 64)  # moved once, to the last of the batch


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM entries WHERE id = :entry",
        "UPDATE entries SET id = id + 1000 WHERE id = :entry",
        "DELETE FROM accounts WHERE number = '512'",
        "UPDATE accounts SET number = '5129' WHERE number = '512'",
        "UPDATE postings SET account_number = '999999' WHERE entry_id = :entry",
        "UPDATE postings SET entry_id = entry_id + 1000 WHERE entry_id = :entry",
        "INSERT INTO postings (entry_id, org_id, line_no, account_number, amount, currency) "
        "VALUES (:entry + 1000, :org, 9, '512', 1, 'EUR')",
        "UPDATE entries SET journal_code = 'ZZ' WHERE id = :entry",
        "UPDATE entries SET site_id = site_id + 1000 WHERE id = :entry",
        "DELETE FROM journals WHERE code = 'OD'",
        "UPDATE journals SET code = 'XX' WHERE code = 'OD'",
        "DELETE FROM sites WHERE id = (SELECT site_id FROM entries WHERE id = :entry)",
        "UPDATE sites SET id = id + 1000 WHERE id = (SELECT site_id FROM entries WHERE id = :entry)",
        "INSERT INTO entries (org_id, site_id, journal_code, entry_date, label, piece_ref, piece_date, funding_source, "
        "created_by, created_at) SELECT org_id, site_id, 'ZZ', entry_date, 'x', 'x', piece_date, 'self', '', created_at "
        "FROM entries WHERE id = :entry",
        "INSERT INTO entries (org_id, site_id, journal_code, entry_date, label, piece_ref, piece_date, funding_source, "
        "created_by, created_at) SELECT org_id, site_id + 1000, journal_code, entry_date, 'x', 'x', piece_date, 'self', '', "
        "created_at FROM entries WHERE id = :entry",
    ],
    ids=["entry deleted", "entry renumbered", "account deleted", "account renumbered", "posting to an unknown account",
         "posting moved to no entry", "posting of no entry", "draft moved to no journal", "draft moved to no site",
         "journal deleted", "journal renamed", "site deleted", "site renumbered", "entry in no journal",
         "entry of no site"],
)
async def test_a_draft_keeps_what_it_refers_to(sessions, world, statement):
    """Foreign keys on SQLite, statement-level triggers on PostgreSQL (migrations 0011, 0012): the same refusals."""
    async with sessions() as session:
        entry = await raw_draft(session, world)
        with pytest.raises(DBAPIError):
            await session.execute(text(statement), {"entry": entry.id, "org": world.org_id})


async def test_entries_cannot_be_inserted_already_validated(sessions, world):
    async with sessions() as session:
        session.add(Entry(org_id=world.org_id, site_id=world.site_id, journal_code="OD", entry_date=TODAY, label="x",
                          piece_ref="x", piece_date=TODAY, funding_source="self", number=1, prev_hash="0" * 64,
                          hash="a" * 64, validated_at=dt.datetime.now()))
        with pytest.raises(DBAPIError, match="drafts"):
            await session.flush()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE entries SET label = 'changed'",
        "UPDATE entries SET number = 7",
        "DELETE FROM entries",
        "UPDATE postings SET amount = amount * 2",
        "UPDATE postings SET account_number = '758' WHERE account_number = '75411'",
        "DELETE FROM postings",
        "INSERT INTO postings (entry_id, org_id, line_no, account_number, amount, currency) "
        "SELECT id, org_id, 9, '512', 1, 'EUR' FROM entries",
        "DELETE FROM ledger_heads",
        "UPDATE ledger_heads SET last_number = last_number + 5",
    ],
)
async def test_raw_sql_cannot_alter_a_validated_entry_even_as_the_owner(sessions, owner_sessions, world, statement):
    await post_gift(sessions, world, key="ch_raw")
    async with owner_sessions() as session:
        with pytest.raises(DBAPIError, match="ledger:"):
            await session.execute(text(statement))


async def test_the_orm_cannot_alter_or_delete_a_validated_entry_even_as_the_owner(sessions, owner_sessions, world):
    await post_gift(sessions, world, key="ch_orm")
    async with owner_sessions() as session:
        entry = await session.scalar(select(Entry))
        entry.label = "falsified"
        with pytest.raises(DBAPIError, match="cannot be modified"):
            await session.flush()
    async with owner_sessions() as session:
        posting = await session.scalar(select(Posting))
        await session.delete(posting)
        with pytest.raises(DBAPIError, match="validated entry"):
            await session.flush()
    async with owner_sessions() as session:
        entry = await session.scalar(select(Entry))
        await session.delete(entry)
        with pytest.raises(DBAPIError):
            await session.flush()


async def test_a_correction_is_a_reversing_entry_that_references_the_original(sessions, world):
    original = await post_gift(sessions, world, key="ch_rev")
    async with transaction(sessions) as session:
        posted = await reverse(session, world.org_id, original.number, reason="doublon", created_by="t")
    async with sessions() as session:
        rev = await session.get(Entry, posted.id)
        assert rev.reverses_id == original.id and rev.label.startswith("Annulation écr. 1")
        rows = await trial_balance(session, org_id=world.org_id)
    assert all(r.balance == 0 for r in rows)
    with pytest.raises(LedgerError, match="déjà été contrepassée par l'écriture n° 2"):
        async with transaction(sessions) as session:
            await reverse(session, world.org_id, original.number, reason="encore")
    with pytest.raises(LedgerError, match="déjà une contrepassation"):
        async with transaction(sessions) as session:
            await reverse(session, world.org_id, posted.number, reason="re")
    other = await post_gift(sessions, world, key="ch_other")
    with pytest.raises(LedgerError, match="motif"):
        async with transaction(sessions) as session:
            await reverse(session, world.org_id, other.number, reason=" ")
    with pytest.raises(LedgerError, match="introuvable"):
        async with transaction(sessions) as session:
            await reverse(session, world.org_id, 999, reason="x")


async def test_same_source_key_posts_once(sessions, world):
    first = await post_gift(sessions, world, key="txn_same")
    again = await post_gift(sessions, world, key="txn_same")
    assert again.created is False and again.number == first.number
    async with transaction(sessions) as session:
        result = await post(session, [gift(world, key="txn_a"), gift(world, key="txn_a"), gift(world, key="txn_b")])
    assert [e.number for e in result.entries] == [2, 3]


async def test_closing_a_month_freezes_it_and_stores_running_totals(sessions, world, engine, owner_sessions):
    two_months_ago = (LAST_MONTH_DAY.replace(day=1) - dt.timedelta(days=1)).replace(day=15)
    await post_gift(sessions, world, key="old", day=two_months_ago, amount=10000, fee=175)
    await post_gift(sessions, world, key="last", day=LAST_MONTH_DAY, amount=5000, fee=100)
    period_2 = two_months_ago.strftime("%Y-%m")
    period_1 = LAST_MONTH_DAY.strftime("%Y-%m")

    with pytest.raises(LedgerError, match=f"clôturez d'abord {period_2}"):
        async with transaction(sessions) as session:
            await close_month(session, world.org_id, period_1)
    with pytest.raises(LedgerError, match="pas terminé"):
        async with transaction(sessions) as session:
            await close_month(session, world.org_id, TODAY.strftime("%Y-%m"))
    with pytest.raises(LedgerError, match="période invalide"):
        async with transaction(sessions) as session:
            await close_month(session, world.org_id, "2026-13")

    async with transaction(sessions) as session:
        first = await close_month(session, world.org_id, period_2)
    async with transaction(sessions) as session:
        second = await close_month(session, world.org_id, period_1)
    assert first.grand_total == '{"EUR":10000}'
    assert second.period_total == '{"EUR":5000}' and second.grand_total == '{"EUR":15000}'
    assert second.prev_hash == first.hash
    assert '"75411|EUR":[0,5000]' in second.totals

    with pytest.raises(LedgerError, match="déjà clos"):
        async with transaction(sessions) as session:
            await close_month(session, world.org_id, period_1)
    with pytest.raises(LedgerError, match="période close"):
        await post_gift(sessions, world, key="late", day=LAST_MONTH_DAY)

    # The database refuses it too, whatever the code does.
    async with sessions() as session:
        entry = await raw_draft(session, world, day=LAST_MONTH_DAY)
        head = await session.get(LedgerHead, world.org_id)
        with pytest.raises(DBAPIError, match="closed"):
            await raw_validate(session, entry, head.last_number + 1, head.last_hash)
    async with owner_sessions() as session:  # even the owner's, whose privileges would allow it
        with pytest.raises(DBAPIError, match="append-only"):
            await session.execute(text("UPDATE closings SET grand_total = '{}'"))

    await post_gift(sessions, world, key="today", day=TODAY)  # the open period still takes entries
    async with engine.connect() as conn:
        report = await verify_org(conn, world.org_id)
    assert report.ok and report.closings == 2, report.problems


async def test_trial_balance_per_period_and_site(sessions, world):
    await post_gift(sessions, world, key="a", amount=5000, fee=100, day=LAST_MONTH_DAY)
    await post_gift(sessions, world, key="b", amount=2000, fee=55, site_id=world.other_site_id)
    async with sessions() as session:
        everything = {r.account: r for r in await trial_balance(session, org_id=world.org_id)}
        site = {r.account: r for r in await trial_balance(session, org_id=world.org_id, site_id=world.other_site_id)}
        month = {r.account: r for r in await trial_balance(session, org_id=world.org_id, start=TODAY.replace(day=1))}
    assert everything["75411"].credit == 7000 and everything["627"].debit == 155
    assert site["5115"].debit == 1945 and "627" in site
    assert month["75411"].credit == 2000
    assert sum(r.balance for r in everything.values()) == 0


async def test_multi_currency_entries_balance_per_currency(sessions, world):
    draft = EntryDraft(
        org_id=world.org_id, site_id=world.site_id, journal="OD", entry_date=TODAY, label="change", piece_ref="fx-1",
        funding_source="internal",
        lines=[debit("512", 1000, "EUR"), credit("580", 1000, "EUR"), debit("512", 150, "JPY"), credit("580", 150, "JPY")],
    )
    async with transaction(sessions) as session:
        await post(session, draft)
    draft.lines[3] = credit("580", 149, "JPY")
    with pytest.raises(LedgerError, match="JPY"):
        async with transaction(sessions) as session:
            await post(session, draft)
