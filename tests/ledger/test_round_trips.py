"""One-entry transactions as fast as the database allows (issue 19): what a posting costs is
counted in statements sent to the database (each one a round trip), not timed; and planning is
chosen per transaction where it matters, not forced on every statement of every connection."""

from __future__ import annotations

from sqlalchemy import text

from funding.db import dialect_of, transaction
from funding.ledger.service import BATCH, post
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
