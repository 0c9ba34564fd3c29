"""One-entry transactions as fast as the database allows (issue 19): what a posting costs is
counted in statements sent to the database (each one a round trip), not timed; and planning is
chosen per transaction where it matters, not forced on every statement of every connection."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from sqlalchemy import select, text

from funding.db import dialect_of, get_held, must_get, transaction
from funding.ledger.models import AuxAccount
from funding.ledger.service import BATCH, EntryDraft, LedgerError, credit, debit, expect_aux_account, post
from funding.orgs.models import Site
from tests.support.db import counted
from tests.support.world import gift


async def test_a_one_entry_posting_reads_in_one_round_trip_and_writes_in_a_few(sessions, world):
    async with transaction(sessions) as session:
        await post(session, gift(world, key="stripe:txn_warm"))  # the chart and the head exist, plans warm
    async with transaction(sessions) as session:
        with counted(sessions) as sent:
            posted = await post(session, gift(world, key="stripe:txn_one"))
    assert posted.entries[0].created
    # read (accounts, aux, closed period, existing key: one UNION), savepoint, entry, postings,
    # head, numbering, release: 13 statements before, among them three SET CONSTRAINTS.
    assert len(sent) <= 7, sent
    assert not [s for s in sent if s.startswith("SET CONSTRAINTS")], sent
    async with transaction(sessions) as session:
        with counted(sessions) as sent:
            again = await post(session, gift(world, key="stripe:txn_one"))
    assert not again.entries[0].created and len(sent) == 1, sent  # already there: one read, nothing written


async def test_planning_is_the_databases_default_except_for_a_batch(sessions, world):
    async with transaction(sessions) as session:
        if dialect_of(session) != "postgresql":
            return  # SQLite has no plan cache to choose for
        assert await session.scalar(text("SELECT current_setting('plan_cache_mode')")) == "auto"  # every connection
        await post(session, gift(world, key="stripe:txn_a"))
        assert await session.scalar(text("SELECT current_setting('plan_cache_mode')")) == "auto"
    async with transaction(sessions) as session:
        await post(session, [gift(world, key=f"stripe:txn_b{n}") for n in range(BATCH)])
        # a batch: its statements (and the triggers they fire) planned for its size, this transaction only
        assert await session.scalar(text("SELECT current_setting('plan_cache_mode')")) == "force_custom_plan"
    async with transaction(sessions) as session:
        assert await session.scalar(text("SELECT current_setting('plan_cache_mode')")) == "auto"


async def test_auxiliary_accounts_asked_for_are_written_by_the_posting_that_names_them_in_one_statement(sessions, world):
    """A booking asks for its members' 411 accounts as it drafts (issue 19, invoice booking): the posting
    inserts every one asked for in one statement before it reads, instead of one round trip each when
    asked; an account nobody asked for is still refused, and one asked for in a transaction rolled back
    is not written by the next."""
    codes = [f"M9{n:05d}" for n in range(5)]
    drafts = [EntryDraft(org_id=world.org_id, site_id=world.site_id, journal="VT", entry_date=dt.date.today(),
                         label=f"Facture {n}", piece_ref=f"F-{n}", funding_source="self", source_key=f"aux:{n}",
                         lines=[debit("411", 1200, aux=code), credit("706", 1200)]) for n, code in enumerate(codes)]
    with pytest.raises(LedgerError, match="compte auxiliaire inconnu"):
        async with transaction(sessions) as session:
            expect_aux_account(session, world.org_id, codes[0], "Julie Fayolle")
            raise LedgerError("compte auxiliaire inconnu : rolled back")  # what was asked for goes with it
    async with transaction(sessions) as session:
        with pytest.raises(LedgerError, match="compte auxiliaire inconnu"):
            await post(session, drafts[0])
    async with transaction(sessions) as session:
        with counted(sessions) as sent:
            for n, code in enumerate(codes):
                expect_aux_account(session, world.org_id, code, f"Membre {n}")
                expect_aux_account(session, world.org_id, code, "asked twice: the first label stays")
            assert sent == []  # nothing written when asked
            posted = await post(session, drafts)
    assert all(p.created for p in posted.entries)
    assert len([s for s in sent if s.startswith("INSERT INTO aux_accounts")]) == 1, sent
    async with sessions() as session:
        labels = dict((await session.execute(select(AuxAccount.code, AuxAccount.label)
                                             .where(AuxAccount.org_id == world.org_id, AuxAccount.code.in_(codes)))).all())
    assert labels == {code: f"Membre {n}" for n, code in enumerate(codes)}
    async with transaction(sessions) as session:  # asked again once they exist: nothing changes, the posting goes through
        expect_aux_account(session, world.org_id, codes[0], "Another label")
        assert (await post(session, replace(drafts[0], source_key="aux:again"))).entries[0].created
    async with sessions() as session:
        assert await session.scalar(select(AuxAccount.label).where(AuxAccount.org_id == world.org_id,
                                                                   AuxAccount.code == codes[0])) == "Membre 0"


async def test_a_held_row_is_answered_without_a_statement_and_read_again_once_expired(sessions, world):
    """must_get/get_held answer a held row as session.get would from its identity map, without its trip
    through the async layer (issue 19, invoice booking); an expired one is read again."""
    async with sessions() as session:
        site = await must_get(session, Site, world.site_id)
        with counted(sessions) as sent:
            assert await must_get(session, Site, world.site_id) is site
            assert await get_held(session, Site, world.site_id) is site
        assert sent == []
        await session.commit()  # its rows stay loaded (expire_on_commit=False), and SQLite's write lock goes
        async with transaction(sessions) as other:
            (await other.get(Site, world.site_id)).name = "Thiers-Renommé"
        assert (await must_get(session, Site, world.site_id)).name == "Thiers"  # as session.get: the map's
        session.expire(site)
        with counted(sessions) as sent:
            assert (await must_get(session, Site, world.site_id)).name == "Thiers-Renommé"
        assert len(sent) == 1, sent
        await session.commit()
