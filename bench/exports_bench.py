"""Exports benchmark: 1,000,000 postings exported as FEC, against PostgreSQL's own COPY.

    python bench/exports_bench.py [--entries 100000] [--lines 10] [--batch 500] [--sqlite-entries N]

On a throw-away PostgreSQL database (TEST_POSTGRES_URL, default the local server) it posts
ENTRIES entries of LINES postings through the ledger service, then, in the same run:
- times `COPY (SELECT <the same rows, same join and order>) TO STDOUT`, read by the same
  driver and thrown away — PostgreSQL's own floor for handing those rows over;
- times the FEC export written to a file (`funding export --format fec` does the same),
  streaming, with its peak memory measured in a child process (ru_maxrss);
and prints the ratio (goal ≤ 1.5×) and the peak memory (goal ≤ 100 MB). Then the same
export on SQLite (Python formats the rows there), from a file filled with the same
postings. Ratios, not verdicts: compare within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text

from funding.db import create_engine, session_factory, transaction
from funding.ledger.service import EntryDraft, Line, post
from funding.migrate import upgrade
from funding.orgs.service import create_organisation, create_site

ROOT = Path(__file__).resolve().parent.parent

ADMIN = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
ACCOUNTS = ["512", "5115", "627", "706", "707", "741", "75411", "7542", "411", "445711"]
# What asyncpg wraps as COPY (…) TO STDOUT: the same rows, join and order as the FEC.
BASELINE = """
    SELECT e.journal_code, e.number, e.entry_date, p.account_number, e.piece_ref, e.piece_date, e.label,
           p.label, p.amount, e.validated_at
    FROM entries e JOIN postings p ON p.entry_id = e.id
    WHERE e.org_id = $1 AND e.number IS NOT NULL AND e.entry_date >= $2 AND e.entry_date <= $3
    ORDER BY e.number, p.line_no
"""


def draft(org_id: int, site_id: int, n: int, lines: int, day: dt.date) -> EntryDraft:
    half = lines // 2
    amounts = [1000 + (n * 7 + i * 13) % 9000 for i in range(half)]
    postings = [Line(ACCOUNTS[i % len(ACCOUNTS)], a) for i, a in enumerate(amounts)]
    postings += [Line(ACCOUNTS[(i + 5) % len(ACCOUNTS)], -a) for i, a in enumerate(amounts)]
    return EntryDraft(org_id=org_id, site_id=site_id, journal="ST", entry_date=day, label=f"Don en ligne n° {n}",
                      piece_ref=f"ch_{n:08d}", funding_source="crowdfunding", lines=postings, source_key=f"stripe:txn_{n}")


async def fill(url: str, entries: int, lines: int, batch: int) -> float:
    engine = create_engine(url)
    sessions = session_factory(engine)
    async with transaction(sessions) as session:
        org = await create_organisation(session, name="Bench", siren="912345675")
        site = await create_site(session, org_id=org.id, slug="bench", name="Bench")
    day = dt.date.today() - dt.timedelta(days=1)
    started = time.perf_counter()
    for i, start in enumerate(range(0, entries, batch)):
        async with transaction(sessions) as session:
            await post(session, [draft(org.id, site.id, n, lines, day) for n in range(start, min(start + batch, entries))])
        if i % 20 == 1 and engine.dialect.name == "postgresql":
            async with engine.begin() as conn:  # what autovacuum does on a live server
                await conn.execute(text("ANALYZE entries, postings"))
    if engine.dialect.name == "postgresql":
        # What autovacuum does on a live server: statistics and an all-visible table.
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM (ANALYZE) entries, postings"))
    await engine.dispose()
    return time.perf_counter() - started


async def baseline(url: str) -> tuple[float, int]:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    size = 0

    async def sink(chunk: bytes) -> None:
        nonlocal size
        size += len(chunk)

    try:
        org_id = await conn.fetchval("SELECT id FROM organisations WHERE siren = '912345675'")
        started = time.perf_counter()
        await conn.copy_from_query(BASELINE, org_id, dt.date(2000, 1, 1), dt.date.today(), output=sink)
        return time.perf_counter() - started, size
    finally:
        await conn.close()


def export_in_child(url: str, out: Path) -> tuple[float, float, str]:
    """Run the export in a fresh process so its peak memory is its own."""
    code = f"""
import asyncio, datetime as dt, resource, sys, time
sys.path.insert(0, {str(ROOT)!r})
from pathlib import Path
from funding.db import create_engine, session_factory
from funding.exports.service import resolve_scope, write_export
async def main():
    engine = create_engine({url!r}); sessions = session_factory(engine)
    async with sessions() as s:
        scope = await resolve_scope(s, siren="912345675", site=None, start=dt.date(2000, 1, 1), end=dt.date.today())
    started = time.perf_counter()
    written = await write_export(engine, sessions, scope, "fec", Path({str(out)!r}), taken_by="bench")
    elapsed = time.perf_counter() - started
    await engine.dispose()
    print(elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, written.digest.rows)
asyncio.run(main())
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    elapsed, peak, rows = result.stdout.split()
    return float(elapsed), float(peak), rows


def idle_rss_in_child() -> float:
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); import resource, funding.exports.service, funding.db; "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


async def admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def main(args) -> None:
    total = args.entries * args.lines
    name = f"funding_bench_{secrets.token_hex(4)}"
    await admin(f'CREATE DATABASE "{name}"')
    url = "postgresql+asyncpg://" + ADMIN.split("://", 1)[1].rsplit("/", 1)[0] + f"/{name}"
    with tempfile.TemporaryDirectory() as tmp:
        try:
            await asyncio.to_thread(upgrade, url)
            print(f"PostgreSQL: posting {args.entries:,} entries × {args.lines} postings = {total:,} postings …", flush=True)
            print(f"  posted in {await fill(url, args.entries, args.lines, args.batch):.0f} s", flush=True)
            copies, exports = [], []
            for _ in range(args.rounds):  # alternate, keep the best of each: the machine is noisy
                copies.append(await baseline(url))
                exports.append(await asyncio.to_thread(export_in_child, url, Path(tmp) / "pg"))
            copy_time, copy_bytes = min(copies)
            export_time, peak, rows = min(exports)
            fec = next(p for p in (Path(tmp) / "pg").glob("*FEC*.txt") if not p.name.endswith("-description.txt"))
            print(f"  COPY (SELECT …) TO STDOUT: {copy_time:.2f} s for {copy_bytes / 1e6:.0f} MB")
            print(f"  FEC export:                {export_time:.2f} s for {fec.stat().st_size / 1e6:.0f} MB, {rows} lines")
            print(f"  FEC / COPY = {export_time / copy_time:.2f}×  (goal ≤ 1.5×)")
            print(f"  peak memory of the export process: {peak:.0f} MB (goal ≤ 100 MB; an idle process with the "
                  f"same imports: {idle_rss_in_child():.0f} MB)")
        finally:
            await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        sqlite_entries = args.sqlite_entries if args.sqlite_entries is not None else args.entries
        if sqlite_entries:
            path = Path(tmp) / "bench.db"
            url = f"sqlite+aiosqlite:///{path}"
            await asyncio.to_thread(upgrade, url)
            print(f"SQLite: posting {sqlite_entries * args.lines:,} postings …", flush=True)
            print(f"  posted in {await fill(url, sqlite_entries, args.lines, args.batch):.0f} s", flush=True)
            export_time, peak, rows = await asyncio.to_thread(export_in_child, url, Path(tmp) / "lite")
            print(f"  FEC export: {export_time:.2f} s for {rows} lines "
                  f"({int(rows) / export_time:,.0f} lines/s); peak memory {peak:.0f} MB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--lines", type=int, default=10)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sqlite-entries", type=int, help="entries for the SQLite run (default: same as PostgreSQL; 0 skips)")
    asyncio.run(main(parser.parse_args()))
