"""On PostgreSQL the FEC is formatted by the database and streamed with COPY; it must be
the very bytes Python formats from the same ledger (any labels, amounts, opening entries,
sites and periods). test_formats checks this too, but stops at its first example where
hledger is not installed; these tests need nothing but PostgreSQL."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from funding.exports import journal
from funding.ledger.chart import JOURNALS
from funding.ledger.models import FUNDING_SOURCES
from funding.ledger.service import EntryDraft, Line
from funding.orgs.models import Site
from tests.support import fec_checker
from tests.support.db import run_async
from tests.support.exports import engine_and_sessions, make_books, post_drafts, scope_for

ACCOUNTS = ("194", "411", "4191", "441", "445711", "512", "5115", "580", "627", "706", "707", "741", "75411", "7542", "7561")
AUX = ("ADH-001", "adh 2/β", "C;3", "tab\there")
TODAY = dt.date.today()
START = TODAY - dt.timedelta(days=200)
BREAKS = st.sampled_from([*journal.BREAKS, " "])
WORDS = st.sampled_from(["Don", "Adhésion « 2026 »", "€", "é", '"', "\\", ";", "|", ",", "ch_1", "\x1c", "\x02", "\u00a0"])
# Texts as people and imports write them, including ones that are only breaks once cleaned.
TEXT = st.lists(WORDS | BREAKS | st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), min_size=1,
                max_size=8).map("".join).filter(lambda s: s.strip())
LINE_LABEL = st.none() | st.sampled_from(["", " ", "\t", "\n\r", "\u2028"]) | TEXT


@st.composite
def entry(draw):
    debits = draw(st.lists(st.integers(1, 10**11), min_size=1, max_size=3))
    credits = draw(st.permutations(debits)) if draw(st.booleans()) else [sum(debits)]
    amounts = debits + [-c for c in credits]
    lines = []
    for amount in amounts:
        account = draw(st.sampled_from(ACCOUNTS))
        aux = draw(st.sampled_from(AUX)) if account == "411" and draw(st.booleans()) else None
        lines.append(Line(account, amount, "EUR", aux, draw(LINE_LABEL)))
    return dict(journal=draw(st.sampled_from(sorted(JOURNALS))), day=START + dt.timedelta(days=draw(st.integers(0, 200))),
                label=draw(TEXT), piece=draw(TEXT), other_site=draw(st.booleans()), source=draw(st.sampled_from(FUNDING_SOURCES)),
                lines=lines)


async def _both(conn, scope) -> tuple[bytes, bytes]:
    copied = b"".join([c async for c in journal.fec_copy(conn, scope)])
    formatted = b"".join([c async for c in journal.fec_python(conn, scope)])
    return copied, formatted


async def _ledger_exports(url: str, specs: list[dict]) -> list[tuple[bytes, bytes]]:
    engine, sessions = engine_and_sessions(url)
    try:
        org_id, site_id, siren, other_id = await make_books(sessions, aux_codes=AUX)
        await post_drafts(sessions, [
            EntryDraft(org_id=org_id, site_id=other_id if s["other_site"] else site_id, journal=s["journal"], entry_date=s["day"],
                       label=s["label"], piece_ref=s["piece"], funding_source=s["source"], lines=s["lines"])
            for s in specs
        ])
        async with sessions() as session:
            slug = (await session.get(Site, site_id)).slug
        scopes = [await scope_for(sessions, siren, START, TODAY), await scope_for(sessions, siren, START, TODAY, site=slug),
                  await scope_for(sessions, siren, START + dt.timedelta(days=50), TODAY - dt.timedelta(days=50))]
        async with engine.connect() as conn:
            # These ledgers take the COPY path (no fallback to Python formatting).
            assert await journal._fec_parts(conn, scopes[0]) is not None
            return [await _both(conn, scope) for scope in scopes]
    finally:
        await engine.dispose()


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(specs=st.lists(entry(), min_size=1, max_size=12))
def test_postgresql_formats_the_fec_byte_for_byte_as_python_does(pg_url, specs):
    for copied, formatted in run_async(lambda: _ledger_exports(pg_url, specs)):
        assert copied == formatted
        assert copied.count(b"\n") == formatted.count(b"\n")


async def test_the_fec_of_a_large_ledger_is_the_same_from_copy_and_from_python(pg_url):
    """Thousands of postings: COPY's chunks are gathered into blocks; numbering, openings
    first and ledger order hold across them."""
    engine, sessions = engine_and_sessions(pg_url)
    try:
        org_id, site_id, siren, _ = await make_books(sessions, aux_codes=["ADH-001"])
        day = TODAY - dt.timedelta(days=3)
        drafts = [
            EntryDraft(org_id=org_id, site_id=site_id, journal="AN" if n % 97 == 5 else "ST", entry_date=day - dt.timedelta(days=n % 3),
                       label=f"Don en ligne n° {n}", piece_ref=f"ch_{n:08d}", funding_source="crowdfunding",
                       lines=[Line("5115", 100 * n + 7), Line("627", n % 100 + 1), Line("411", -(100 * n + n % 100 + 8), aux="ADH-001",
                                                                                          label="Adhérent" if n % 2 else None)])
            for n in range(3000)
        ]
        await post_drafts(sessions, drafts)
        scope = await scope_for(sessions, siren, day - dt.timedelta(days=2), day)
        async with engine.connect() as conn:
            copied, formatted = await _both(conn, scope)
        assert copied == formatted
        assert copied.count(b"\n") == 9001
        assert fec_checker.check_fec(journal.fec_filename(scope), copied) == []
        lines = copied.decode().splitlines()
        assert lines[1].startswith("AN\tÀ-nouveaux\t1\t") and lines[-1].startswith("ST\tStripe\t3000\t")
    finally:
        await engine.dispose()


async def test_a_code_copy_would_quote_sends_the_fec_to_python(pg_url):
    """An auxiliary code holding a line break goes out as is (like every code): COPY would
    quote it, so such a ledger is formatted by Python, with the same bytes."""
    engine, sessions = engine_and_sessions(pg_url)
    try:
        org_id, site_id, siren, _ = await make_books(sessions, aux_codes=["ADH\n1"])
        await post_drafts(sessions, [EntryDraft(
            org_id=org_id, site_id=site_id, journal="BQ", entry_date=TODAY, label="Cotisation", piece_ref="VIR-1",
            funding_source="private", lines=[Line("512", 2000), Line("411", -2000, aux="ADH\n1")])])
        scope = await scope_for(sessions, siren, TODAY, TODAY)
        async with engine.connect() as conn:
            assert await journal._fec_parts(conn, scope) is None
            copied, formatted = await _both(conn, scope)
        assert copied == formatted and b"ADH\n1" in copied
    finally:
        await engine.dispose()
