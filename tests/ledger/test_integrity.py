"""Tampering behind the application's back is caught; concurrent validations never gap."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import select

from funding.db import create_engine, transaction
from funding.ledger.models import Entry
from funding.ledger.service import EntryDraft, credit, debit, post, reverse, trial_balance
from funding.ledger.verify import verify_org
from tests.support.cli import funding
from tests.support.db import sealed_sessions
from tests.support.tamper import without_triggers
from tests.support.world import make_world, post_gift


@pytest.mark.parametrize(
    "tamper, expected",
    [
        ("UPDATE postings SET amount = amount + 100 WHERE entry_id = (SELECT id FROM entries WHERE number = 3) AND line_no = 1",
         "entry 3: unbalanced"),
        ("UPDATE entries SET label = 'Don anonyme' WHERE number = 2", "entry 2: hash mismatch"),
        ("UPDATE postings SET account_number = '7542' WHERE entry_id = (SELECT id FROM entries WHERE number = 4) AND line_no = 3",
         "entry 4: hash mismatch"),
        ("DELETE FROM postings WHERE entry_id = (SELECT id FROM entries WHERE number = 2)", "entry 2: has no postings"),
    ],
)
async def test_verify_names_the_first_altered_entry(sessions, world, engine, owner_engine, settings, tamper, expected):
    for n in range(5):
        await post_gift(sessions, world, key=f"ch_{n}", amount=1000 + n)
    async with engine.connect() as conn:
        assert (await verify_org(conn, world.org_id)).ok
    await without_triggers(owner_engine, [tamper])
    async with engine.connect() as conn:
        report = await verify_org(conn, world.org_id)
    assert not report.ok
    assert report.problems[0].startswith(expected), report.problems

    result = await funding(settings, "ledger", "verify")
    assert result.exit_code == 1
    assert "BROKEN" in result.stdout and expected in result.stdout
    assert "Traceback" not in result.stderr


async def test_a_deleted_entry_leaves_a_gap_that_verify_reports(sessions, world, engine, owner_engine):
    for n in range(4):
        await post_gift(sessions, world, key=f"g_{n}")
    await without_triggers(owner_engine, [
        "DELETE FROM postings WHERE entry_id = (SELECT id FROM entries WHERE number = 2)",
        "DELETE FROM entries WHERE number = 2",
    ])
    async with engine.connect() as conn:
        report = await verify_org(conn, world.org_id)
    assert report.problems[0] == "entry 3: numbering gap, expected 2"


async def test_verify_cli_is_green_on_an_intact_ledger(sessions, world, settings):
    await post_gift(sessions, world, key="ok")
    result = await funding(settings, "ledger", "verify")
    assert result.exit_code == 0, result.stderr
    assert "OK — 1 entries, 3 postings" in result.stdout


@pytest.mark.postgres_only
async def test_twenty_concurrent_validations_get_twenty_consecutive_numbers(pg_url):
    engine = create_engine(pg_url)
    sessions = sealed_sessions(engine)
    try:
        world = await make_world(sessions)
        start = asyncio.Event()

        async def one(n: int):
            await start.wait()
            return await post_gift(sessions, world, key=f"concurrent-{n}", amount=1000 + n)

        tasks = [asyncio.create_task(one(n)) for n in range(20)]
        await asyncio.sleep(0.05)
        start.set()
        posted = await asyncio.gather(*tasks)
        assert sorted(p.number for p in posted) == list(range(1, 21))
        async with engine.connect() as conn:
            report = await verify_org(conn, world.org_id)
        assert report.ok and report.entries == 20, report.problems
    finally:
        await engine.dispose()


ACCOUNTS = ["512", "5115", "627", "706", "707", "741", "75411", "7542", "411", "44571"]
SOURCES = ["public", "private", "crowdfunding", "self", "internal"]

line_strategy = st.tuples(st.sampled_from(ACCOUNTS), st.integers(min_value=1, max_value=10**9))
entry_strategy = st.tuples(
    st.lists(line_strategy, min_size=1, max_size=4),  # debits; the credits mirror them on other accounts
    st.sampled_from(ACCOUNTS),
    st.sampled_from(SOURCES),
    st.integers(min_value=0, max_value=60),  # days ago
    st.booleans(),  # reverse it afterwards
)


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=st.lists(entry_strategy, min_size=1, max_size=12))
def test_random_valid_entries_and_reversals_always_balance_and_verify(database_url, entries):
    async def scenario():
        engine = create_engine(database_url)
        sessions = sealed_sessions(engine)
        try:
            world = await make_world(sessions)
            today = dt.date.today()
            posted = []
            for n, (debits, credit_account, source, days_ago, undo) in enumerate(entries):
                lines = [debit(acc, amount) for acc, amount in debits]
                lines.append(credit(credit_account, sum(amount for _, amount in debits)))
                draft = EntryDraft(org_id=world.org_id, site_id=world.site_id, journal="OD",
                                   entry_date=today - dt.timedelta(days=days_ago), label=f"op {n}", piece_ref=f"P{n}",
                                   funding_source=source, lines=lines)
                async with transaction(sessions) as session:
                    posted.append(((await post(session, draft)).entries[0], undo))
            for entry, undo in posted:
                if undo:
                    async with transaction(sessions) as session:
                        await reverse(session, world.org_id, entry.number, reason="test")
            async with sessions() as session:
                rows = await trial_balance(session, org_id=world.org_id)
                numbers = (await session.scalars(select(Entry.number).where(Entry.org_id == world.org_id).order_by(Entry.number))).all()
            assert sum(r.debit for r in rows) == sum(r.credit for r in rows)
            assert sum(r.balance for r in rows) == 0
            assert numbers == list(range(1, len(entries) + sum(1 for e in entries if e[4]) + 1))
            async with engine.connect() as conn:
                report = await verify_org(conn, world.org_id)
            assert report.ok, report.problems
        finally:
            await engine.dispose()

    asyncio.run(scenario())
