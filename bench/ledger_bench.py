"""Ledger benchmark (PostgreSQL): posting throughput, and `ledger verify` against a plain SELECT.

    python bench/ledger_bench.py [--entries 100000] [--lines 10] [--batch 500] [--seals 365]

Creates a throw-away database on TEST_POSTGRES_URL (default the local server), posts
ENTRIES entries of LINES postings each through the real service (numbered, chained,
checked by the triggers), sealing the head SEALS times along the way (a year of daily
closings), then times `verify_org` over the whole chain — with the seals, the database's
and the same ones kept in a saved feed — against a plain SELECT of the same rows through the
same driver, in the same run; and a page of the staff journal (`journal_page`: the page, each
entry's amount and currency and the list's count), the first and one in the middle, against a
plain SELECT of the same page of entries, timed in alternation. Prints ratios, not verdicts:
machines here are noisy, so compare within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import resource
import secrets
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select, text

from funding.db import create_engine, session_factory, transaction
from funding.ledger.journal import journal_page
from funding.ledger.models import Entry, SealKind
from funding.ledger.seals import Keyring, feed, feed_csv, parse_kept, seal
from funding.ledger.service import EntryDraft, Line, post
from funding.ledger.verify import _entries_query, verify_org
from funding.migrate import upgrade
from funding.orgs.models import Organisation, Site
from funding.orgs.service import create_organisation, create_site
from funding.settings import load_settings

ADMIN = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
ACCOUNTS = ["512", "5115", "627", "706", "707", "741", "75411", "7542", "411", "445711"]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def draft(org_id: int, site_id: int, n: int, lines: int, day: dt.date) -> EntryDraft:
    half = lines // 2
    amounts = [1000 + (n * 7 + i * 13) % 9000 for i in range(half)]
    postings = [Line(ACCOUNTS[i % len(ACCOUNTS)], a) for i, a in enumerate(amounts)]
    postings += [Line(ACCOUNTS[(i + 5) % len(ACCOUNTS)], -a) for i, a in enumerate(amounts)]
    return EntryDraft(org_id=org_id, site_id=site_id, journal="OD", entry_date=day, label=f"Opération {n}",
                      piece_ref=f"BENCH-{n}", funding_source="self", lines=postings)


async def timed_together(first, second, rounds: int) -> tuple[tuple[float, object], tuple[float, object]]:
    """Both timed in alternation, the median of each: drift on a shared machine hits both alike."""
    times: tuple[list[float], list[float]] = ([], [])
    results: list[object] = [None, None]
    for n in range(rounds):
        for k, fn in ((0, first), (1, second)) if n % 2 == 0 else ((1, second), (0, first)):
            started = time.perf_counter()
            results[k] = await fn()
            times[k].append(time.perf_counter() - started)
    return (statistics.median(times[0]), results[0]), (statistics.median(times[1]), results[1])


async def journal_pages(sessions, entries: int) -> None:
    """The staff journal's page against a plain SELECT of the same entries (what the page shows of them)."""
    for offset in (0, entries // 2):
        async def staff_page(offset=offset):
            async with sessions() as session:
                return await journal_page(session, offset=offset, limit=50)

        async def plain_page(offset=offset):
            async with sessions() as session:
                return (await session.execute(
                    select(Entry.id, Entry.number, Entry.entry_date, Entry.journal_code, Entry.label, Entry.piece_ref,
                           Entry.funding_source, Site.name, Organisation.siren)
                    .join(Site, Site.id == Entry.site_id).join(Organisation, Organisation.id == Entry.org_id)
                    .where(Entry.number.is_not(None)).order_by(Entry.validated_at.desc(), Entry.id.desc())
                    .offset(offset).limit(50))).all()

        await staff_page()
        await plain_page()
        (select_time, plain_rows), (page_time, (total, rows)) = await timed_together(plain_page, staff_page, rounds=21)
        assert total == entries and [r.id for r in rows] == [r.id for r in plain_rows]
        print(f"journal page (50 of {entries:,} from {offset:,}): {page_time * 1000:.1f} ms; plain SELECT of the page "
              f"{select_time * 1000:.1f} ms; page / plain SELECT = {page_time / select_time:.2f}×", flush=True)


async def main(args) -> None:
    name = f"funding_bench_{secrets.token_hex(4)}"
    await admin(f'CREATE DATABASE "{name}"')
    url = "postgresql+asyncpg://" + ADMIN.split("://", 1)[1].rsplit("/", 1)[0] + f"/{name}"
    try:
        await asyncio.to_thread(upgrade, url)
        engine = create_engine(url)
        keyring = Keyring.from_settings(load_settings({}, FUNDING_ENV="test"))
        sessions = session_factory(engine, keyring=keyring)
        async with transaction(sessions) as session:
            org = await create_organisation(session, name="Bench", siren="912345675")
            site = await create_site(session, org_id=org.id, slug="bench", name="Bench")
        day = dt.date.today()

        print(f"posting {args.entries:,} entries × {args.lines} postings in batches of {args.batch} …", flush=True)
        started = time.perf_counter()
        every = max(1, args.entries // max(args.seals, 1))
        for i, start in enumerate(range(0, args.entries, args.batch)):
            async with transaction(sessions) as session:
                await post(session, [draft(org.id, site.id, n, args.lines, day)
                                     for n in range(start, min(start + args.batch, args.entries))])
                # One seal each time the entries pass a multiple of `every` (a day's closings).
                for _ in range(start // every, min(start + args.batch, args.entries) // every):
                    await seal(session, org.id, kind=SealKind.BAR_DAY, period=day.isoformat())
            if i % 20 == 1:
                # What autovacuum does on a live server: without statistics, the plans cached
                # for the foreign-key checks of a table that was empty scan it sequentially.
                async with engine.begin() as conn:
                    await conn.execute(text("ANALYZE entries, postings"))
        posting = time.perf_counter() - started
        total_postings = args.entries * args.lines
        print(f"post:   {args.entries / posting:,.0f} entries/s ({total_postings / posting:,.0f} postings/s), "
              f"{posting:.1f} s; peak RSS so far {rss_mb():.0f} MB", flush=True)

        async with engine.begin() as conn:
            await conn.execute(text("ANALYZE entries, postings"))
        await journal_pages(sessions, args.entries)

        # Plain SELECT of the same rows, same driver, streamed the same way.
        async with engine.connect() as conn:
            started = time.perf_counter()
            rows = 0
            result = await conn.stream(_entries_query(org.id))
            async for part in result.partitions(10_000):
                rows += len(part)
            select_time = time.perf_counter() - started
        async with sessions() as session:
            kept = parse_kept(feed_csv(await feed(session, keyring)))  # the feed as an accountant saved it
        rss_before = rss_mb()
        async with engine.connect() as conn:
            started = time.perf_counter()
            report = await verify_org(conn, org.id, keyring=keyring, kept=kept)
            verify_time = time.perf_counter() - started
        assert report.ok, report.problems[:3]
        assert rows == total_postings == report.postings, (rows, total_postings, report.postings)
        print(f"select: {rows:,} rows in {select_time:.2f} s ({rows / select_time:,.0f} rows/s)")
        print(f"seals:  {report.counts.get('seals', 0):,} in the database, {report.counts.get('seals kept elsewhere', 0):,} "
              "kept elsewhere, all checked (signature, chain, the entries they name)")
        print(f"verify: {report.postings:,} postings, {report.entries:,} entries in {verify_time:.2f} s "
              f"({report.postings / verify_time:,.0f} postings/s)")
        print(f"verify / plain SELECT = {verify_time / select_time:.2f}×  (target ≤ 3×)")
        print(f"peak RSS: {rss_mb():.0f} MB (before verify {rss_before:.0f} MB)")
        await engine.dispose()
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--lines", type=int, default=10)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--seals", type=int, default=365)
    asyncio.run(main(parser.parse_args()))
