"""The service's PostgreSQL role can write history and cannot erase it; the foreign keys refuse
the race their triggers let through. (The whole suite runs as that role on PostgreSQL: a
privilege the service lacks fails a test.)"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from funding import grants
from funding.db import create_engine, transaction
from funding.errors import FundingError
from funding.ledger.models import Account, Posting
from funding.ledger.service import EntryDraft, credit, debit
from funding.models import metadata
from tests.support.db import owner_url
from tests.support.world import make_world, post_gift

REFUSED = [
    "TRUNCATE tax_receipts", "TRUNCATE bar_archives", "TRUNCATE bar_batch_lines", "TRUNCATE export_logs",
    "TRUNCATE entries CASCADE", "TRUNCATE ledger_seals",
    "DELETE FROM postings", "DELETE FROM entries", "DELETE FROM closings", "DELETE FROM ledger_seals",
    "DELETE FROM bar_sale_lines", "DELETE FROM bar_archives", "DELETE FROM export_logs", "DELETE FROM tax_receipts",
    "DELETE FROM accounts", "DELETE FROM sites",
    "UPDATE postings SET amount = 1", "UPDATE entries SET label = 'x'", "UPDATE closings SET totals = '{}'",
    "UPDATE ledger_seals SET hash = ''", "UPDATE bar_sale_lines SET amount = 1", "UPDATE bar_archives SET content = ''",
    "UPDATE export_logs SET sha256 = ''", "UPDATE tax_receipts SET amount = 1", "UPDATE ledger_heads SET org_id = 1",
    "ALTER TABLE entries DISABLE TRIGGER entries_update_guard", "ALTER TABLE entries DISABLE TRIGGER USER",
    "DROP TRIGGER entries_update_guard ON entries", "DROP TRIGGER ledger_seals_frozen ON ledger_seals",
    "ALTER TABLE postings DROP CONSTRAINT fk_postings_entry_id_org_id_entries", "DROP TABLE ledger_seals",
    "CREATE TABLE intruder (id int)", "SET session_replication_role = replica",
    "CREATE OR REPLACE FUNCTION ledger_frozen() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$",
]


@pytest.mark.postgres_only
@pytest.mark.parametrize("statement", REFUSED)
async def test_the_services_role_cannot_erase_or_unguard_history(pg_url, statement):
    engine = create_engine(pg_url)
    try:
        async with engine.connect() as conn:
            with pytest.raises(DBAPIError, match=r"permission denied|must be owner|must be superuser"):
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.mark.postgres_only
async def test_the_services_role_is_not_the_owner_and_its_grants_are_reapplied_identically(pg_url):
    from sqlalchemy.engine import make_url

    engine = create_engine(owner_url(pg_url))
    role = make_url(pg_url).username
    try:
        async with engine.connect() as conn:
            owned = (await conn.execute(text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND "
                                             "tableowner = :r"), {"r": role})).scalar_one()
            before = (await conn.execute(text("SELECT table_name, privilege_type FROM information_schema.role_table_grants "
                                              "WHERE grantee = :r ORDER BY 1, 2"), {"r": role})).all()
        assert owned == 0
        assert ("postings", "INSERT") in before and ("postings", "UPDATE") not in before
        assert ("ledger_seals", "DELETE") not in before and ("memberships", "DELETE") in before
        await grants.apply(owner_url(pg_url), pg_url)
        async with engine.connect() as conn:
            after = (await conn.execute(text("SELECT table_name, privilege_type FROM information_schema.role_table_grants "
                                             "WHERE grantee = :r ORDER BY 1, 2"), {"r": role})).all()
        assert after == before
    finally:
        await engine.dispose()


def test_every_table_has_its_privileges_written():
    assert set(grants.TABLES) == {t.name for t in metadata.sorted_tables} | {"alembic_version"}
    for name, access in grants.TABLES.items():
        if isinstance(access.update, tuple) and access.update:
            assert set(access.update) <= set(metadata.tables[name].c.keys()), name


async def test_an_owner_url_without_a_database_is_refused_before_anything_is_granted():
    with pytest.raises(FundingError, match="MIGRATION_DATABASE_URL"):
        await grants.apply("postgresql://owner@127.0.0.1:1", "postgresql://service@127.0.0.1:1/funding")


@pytest.mark.postgres_only
async def test_a_concurrent_delete_of_an_account_beside_an_uncommitted_posting_is_refused(pg_url):
    """Migrations 0011–0012 checked postings' references by trigger, without locking: the owner's
    DELETE of an account committed beside an uncommitted posting, leaving an orphan. The foreign
    key locks the account: the DELETE waits, then fails."""
    from tests.support.db import sealed_sessions

    engine, owner = create_engine(pg_url), create_engine(owner_url(pg_url))
    sessions = sealed_sessions(engine)
    try:
        world = await make_world(sessions)
        async with transaction(sessions) as session:
            session.add(Account(org_id=world.org_id, number="7588", label="Produits divers (test)"))
        from funding.ledger.service import post

        posting = asyncio.Event()
        release = asyncio.Event()

        async def poster():
            async with transaction(sessions) as session:
                await post(session, EntryDraft(org_id=world.org_id, site_id=world.site_id, journal="OD",
                                               entry_date=__import__("datetime").date.today(), label="Produit divers",
                                               piece_ref="P1", funding_source="self",
                                               lines=[debit("512", 100), credit("7588", 100)]))
                posting.set()
                await release.wait()

        async def deleter():
            await posting.wait()
            async with owner.connect() as conn:
                await conn.execute(text("SET lock_timeout = '5s'"))
                task = asyncio.ensure_future(conn.execute(text(
                    f"DELETE FROM accounts WHERE org_id = {world.org_id} AND number = '7588'")))
                await asyncio.sleep(0.5)
                release.set()
                with pytest.raises(DBAPIError, match=r"foreign key|violates"):
                    await task
                await conn.rollback()

        await asyncio.gather(poster(), deleter())
        async with sessions() as session:
            assert await session.scalar(select(Account.id).where(Account.org_id == world.org_id, Account.number == "7588"))
            assert await session.scalar(select(Posting.id).where(Posting.account_number == "7588"))
    finally:
        await engine.dispose()
        await owner.dispose()


async def test_an_entry_with_postings_cannot_lose_its_account_or_site_even_as_the_owner(sessions, owner_engine, world):
    await post_gift(sessions, world, key="ch_fk")
    for statement in ("DELETE FROM accounts WHERE number = '75411'", f"DELETE FROM sites WHERE id = {world.site_id}",
                      "DELETE FROM journals WHERE code = 'ST'"):
        async with owner_engine.connect() as conn:
            with pytest.raises(DBAPIError, match=r"(?i)foreign key|has entries|has postings"):
                await conn.execute(text(statement))
            await conn.rollback()
