"""Annual accounts benchmark: compte de résultat and bilan over 1,000,000 postings, against a plain GROUP BY.

    python bench/annual_accounts_bench.py [--entries 100000] [--lines 10] [--batch 1000] [--rounds 3] [--no-postgres] [--sqlite-file PATH] [--postgres-db NAME]

In a fresh SQLite file (then a throw-away PostgreSQL database on TEST_POSTGRES_URL, default the
local server, unless --no-postgres), posts ENTRIES entries of LINES postings through the ledger
service, spread over three fiscal years (before N-1, N-1 and N) and every class of account the
accounts map (bank, receivables, VAT, fonds dédiés, charges, produits, contributions in kind),
some in journal AN. Then, in the same run, best of ROUNDS each:
- the floor: ``SELECT account_number, SUM(amount) FROM postings JOIN entries … GROUP BY
  account_number`` over the same rows, through the same driver;
- ``annual_accounts()`` for year N: its single GROUP BY (account, currency; each row summed into
  its year) and the mapping in Python of every account onto the statements' lines;
- the same with the revenue by funding source (two calls of revenue_by_source, N and N-1), as
  the page computes it;
and prints the ratios (target ≤ 2× for the statements) and the computation's peak memory
(tracemalloc) with the process's peak RSS. Ratios, not verdicts: compare within one run.

Measured on 2026-12-05, 1,000,000 postings, one run each (best of 5), 2 CPUs shared (load 4):
    SQLite:     plain GROUP BY 0.40 s, annual accounts 0.63 s: 1.58×; with the revenue by source
                0.84 s: 2.11×; peak Python memory of the computation 0.2 MB, peak RSS 94 MB
    PostgreSQL: plain GROUP BY 0.15 s, annual accounts 0.20 s: 1.37×; with the revenue by source
                0.35 s: 2.35×; peak Python memory 0.4 MB, peak RSS 99 MB
Where SQLite's time went (2.11× on 2026-12-04): one GROUP BY (account, currency) with a CASE per
year made its sorter carry every posting's date with its amount. Three GROUP BYs over disjoint
date ranges (UNION ALL), each reading its own range of the entries' (org, date) index, sort the
amount alone: 1.3–1.6× over several runs. PostgreSQL hashes its groups, and the union read the
postings three times (1.8–2×): there one GROUP BY on the year bucket (1.15–1.5×). See
funding/ledger/annual.py, buckets_query. The revenue by source is two more queries (N and N-1):
not part of the ≤ 2× goal, reported beside it. ``--sqlite-file`` and ``--postgres-db`` keep the
filled databases to measure again without refilling.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import resource
import secrets
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select, text

from funding.db import create_engine, session_factory, transaction
from funding.ledger.annual import annual_accounts
from funding.ledger.models import Account
from funding.ledger.service import EntryDraft, Line, post
from funding.migrate import upgrade
from funding.orgs.service import create_organisation, create_site

ADMIN = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
YEAR = dt.date.today().year - 1  # N: a whole past year; N-1 and the year before it hold the rest
EXTRA = [("110", "Report à nouveau"), ("2183", "Matériel informatique"), ("401", "Fournisseurs"), ("606", "Achats"),
         ("6811", "Dotations aux amortissements")]
# (debit, credit, funding source): the kinds of entries the generator cycles through.
PAIRS = [("512", "706", "self"), ("5115", "75411", "crowdfunding"), ("627", "5115", "internal"), ("441", "741", "public"),
         ("512", "441", "public"), ("606", "401", "self"), ("401", "512", "self"), ("864", "870", "private"),
         ("6894", "194", "public"), ("194", "7894", "public"), ("2183", "401", "self"), ("6811", "2183", "self"),
         ("512", "7542", "private"), ("411", "445711", "self"), ("861", "871", "private")]
PLAIN = """
    SELECT p.account_number, SUM(p.amount) FROM postings p JOIN entries e ON e.id = p.entry_id
    WHERE e.org_id = :org AND e.number IS NOT NULL GROUP BY p.account_number
"""


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def draft(org_id: int, site_id: int, n: int, lines: int, entries: int) -> EntryDraft:
    # Three years, spread evenly: before N-1, N-1, N (day of year from the entry's number).
    year = YEAR - 2 + n * 3 // entries
    day = dt.date(year, 1, 1) + dt.timedelta(days=n % 365)
    postings = []
    for i in range(lines // 2):
        deb, cred, _source = PAIRS[(n + i) % len(PAIRS)]
        amount = 1000 + (n * 7 + i * 13) % 9000
        postings += [Line(deb, amount), Line(cred, -amount)]
    journal = "AN" if n % 97 == 0 else "OD"
    return EntryDraft(org_id=org_id, site_id=site_id, journal=journal, entry_date=day, label=f"Opération {n}",
                      piece_ref=f"BENCH-{n}", funding_source=PAIRS[n % len(PAIRS)][2], lines=postings)


async def fill(url: str, entries: int, lines: int, batch: int) -> tuple[int, float]:
    await asyncio.to_thread(upgrade, url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    async with transaction(sessions) as session:
        org = await create_organisation(session, name="Bench", siren="912345675")
        site = await create_site(session, org_id=org.id, slug="bench", name="Bench")
        have = set((await session.scalars(select(Account.number).where(Account.org_id == org.id))).all())
        session.add_all(Account(org_id=org.id, number=n, label=label) for n, label in EXTRA if n not in have)
    started = time.perf_counter()
    for i, start in enumerate(range(0, entries, batch)):
        async with transaction(sessions) as session:
            await post(session, [draft(org.id, site.id, n, lines, entries) for n in range(start, min(start + batch, entries))])
        if url.startswith("postgresql") and i % 20 == 1:
            # What autovacuum does on a live server (as bench/ledger_bench.py): without statistics, the
            # plans cached for the checks of a table that was empty scan it sequentially.
            async with engine.begin() as conn:
                await conn.execute(text("ANALYZE entries, postings"))
    if url.startswith("postgresql"):
        async with engine.begin() as conn:
            await conn.execute(text("ANALYZE entries, postings"))
    await engine.dispose()
    return org.id, time.perf_counter() - started


async def filled(url: str) -> int | None:
    """The organisation of a kept database (SQLite file, PostgreSQL database) filled by an earlier run, if any."""
    if url.startswith("sqlite") and not await asyncio.to_thread(Path(url.split("///", 1)[1]).exists):
        return None
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            if not (await conn.execute(text("SELECT count(*) FROM information_schema.tables WHERE table_name = 'organisations'"
                                            if url.startswith("postgresql") else
                                            "SELECT count(*) FROM sqlite_master WHERE name = 'organisations'"))).scalar():
                return None
            return (await conn.execute(text("SELECT id FROM organisations WHERE siren = '912345675'"))).scalar()
    finally:
        await engine.dispose()


async def measure(url: str, org_id: int, rounds: int) -> tuple[float, float, float, float, int]:
    """Best of ``rounds``, interleaved: the plain GROUP BY, the statements, the statements with the
    revenue by source (the page's whole computation); and the statements' peak Python memory."""
    engine = create_engine(url)
    sessions = session_factory(engine)
    plain, statements, whole, peak = float("inf"), float("inf"), float("inf"), 0
    rows = 0
    for _ in range(rounds):
        async with engine.connect() as conn:
            started = time.perf_counter()
            rows = len((await conn.execute(text(PLAIN), {"org": org_id})).all())
            plain = min(plain, time.perf_counter() - started)
        async with sessions() as session:
            tracemalloc.start()
            started = time.perf_counter()
            acc = await annual_accounts(session, org_id=org_id, year=YEAR, with_sources=False)
            statements = min(statements, time.perf_counter() - started)
            peak = max(peak, tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
        assert acc.balanced, (acc.total_actif, acc.total_passif)
        async with sessions() as session:
            started = time.perf_counter()
            full = await annual_accounts(session, org_id=org_id, year=YEAR)
            whole = min(whole, time.perf_counter() - started)
        assert full.sources and full.total_actif == acc.total_actif
    await engine.dispose()
    return plain, statements, whole, peak / 1e6, rows


async def run(label: str, url: str, args) -> None:
    total = args.entries * args.lines
    print(f"{label}: posting {total:,} postings ({args.entries:,} entries) …", flush=True)
    org_id = await filled(url) if (args.sqlite_file if url.startswith("sqlite") else args.postgres_db) else None
    if org_id is None:
        org_id, posting = await fill(url, args.entries, args.lines, args.batch)
        print(f"  posted in {posting:.0f} s", flush=True)
    else:
        print(f"  already filled: {url}", flush=True)
    plain, statements, whole, peak, rows = await measure(url, org_id, args.rounds)
    print(f"  plain GROUP BY: {plain:.2f} s ({rows} accounts); annual accounts {YEAR}: {statements:.2f} s; "
          f"with the revenue by source: {whole:.2f} s")
    print(f"  annual accounts / plain GROUP BY = {statements / plain:.2f}×  (target ≤ 2×); with the revenue by source "
          f"{whole / plain:.2f}×; peak Python memory of the computation {peak:.1f} MB; peak RSS {rss_mb():.0f} MB", flush=True)


async def admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def main(args) -> None:
    if args.sqlite_file:  # kept between runs: filled once, measured as often as wanted
        await run("SQLite", f"sqlite+aiosqlite:///{args.sqlite_file}", args)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            await run("SQLite", f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}", args)
    if args.no_postgres:
        return
    if args.postgres_db:  # kept between runs, like --sqlite-file
        url = "postgresql+asyncpg://" + ADMIN.split("://", 1)[1].rsplit("/", 1)[0] + f"/{args.postgres_db}"
        import asyncpg

        conn = await asyncpg.connect(ADMIN)
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", args.postgres_db)
        finally:
            await conn.close()
        if not exists:
            await admin(f'CREATE DATABASE "{args.postgres_db}"')
        await run("PostgreSQL", url, args)
        return
    name = f"funding_bench_{secrets.token_hex(4)}"
    await admin(f'CREATE DATABASE "{name}"')
    try:
        await run("PostgreSQL", "postgresql+asyncpg://" + ADMIN.split("://", 1)[1].rsplit("/", 1)[0] + f"/{name}", args)
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--lines", type=int, default=10)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--postgres-db", help="keep the PostgreSQL database of this name (filled once, reused by later runs)")
    parser.add_argument("--sqlite-file", help="keep the SQLite database in this file (filled once, reused by later runs)")
    arguments = parser.parse_args()
    if arguments.sqlite_file:
        arguments.sqlite_file = str(Path(arguments.sqlite_file).resolve())
    asyncio.run(main(arguments))
