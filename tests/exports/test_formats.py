"""Every export of a ledger built from random valid postings passes its validator (the FEC
checker of ACCOUNTING.md §4, bean-check, hledger check), and all formats agree with the
ledger on every account's balance to the cent."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import unicodedata
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from funding.db import transaction
from funding.exports import journal, service
from funding.exports.journal import ExportError
from funding.exports.models import ExportLog
from funding.ledger.chart import JOURNALS
from funding.ledger.models import FUNDING_SOURCES
from funding.ledger.service import EntryDraft, Line, close_month, reverse, trial_balance
from funding.orgs.models import Site
from tests.support import fec_checker
from tests.support.db import run_async
from tests.support.exports import (
    bean_check,
    beancount_balances,
    engine_and_sessions,
    hledger_balances,
    hledger_check,
    journal_csv_balances,
    make_books,
    monthly_fec_name,
    post_drafts,
    scope_for,
)

ACCOUNTS = ("194", "411", "4191", "441", "445711", "512", "5115", "580", "627", "706", "707", "741", "75411", "7542", "7561")
AUX = ("ADH-001", "adh 2/β", "C;3")
TODAY = dt.date.today()
START = TODAY - dt.timedelta(days=300)
SPECIALS = st.sampled_from(["\t", "\n", "\r\n", '"', "\\", ";", "|", ",", "\x01", "\u2028", "€", "é", "  ", ":", "(1)"])
TEXT = st.lists(st.characters(exclude_categories=("Cs",), exclude_characters="\x00") | SPECIALS, min_size=1, max_size=12).map(
    "".join).filter(lambda s: any(unicodedata.category(c)[0] in "LNPS" for c in s.strip()[:200]))


@dataclass
class EntrySpec:
    journal: str
    source: str
    day: dt.date
    label: str
    piece: str
    other_site: bool
    lines: list[tuple[str, str | None, int, str | None]]


@st.composite
def entries(draw) -> EntrySpec:
    debits = draw(st.lists(st.integers(1, 10**9), min_size=1, max_size=3))
    total = sum(debits)
    cuts = draw(st.lists(st.integers(1, total - 1), max_size=2, unique=True)) if total > 1 else []
    bounds = [0, *sorted(cuts), total]
    credits = [b - a for a, b in itertools.pairwise(bounds)]
    amounts = debits + [-c for c in credits]
    lines = []
    for amount in draw(st.permutations(amounts)):
        account = draw(st.sampled_from(ACCOUNTS))
        aux = draw(st.sampled_from(AUX)) if account == "411" and draw(st.booleans()) else None
        lines.append((account, aux, amount, draw(st.none() | TEXT)))
    return EntrySpec(
        journal=draw(st.sampled_from(sorted(JOURNALS))), source=draw(st.sampled_from(FUNDING_SOURCES)),
        day=START + dt.timedelta(days=draw(st.integers(0, 300))), label=draw(TEXT), piece=draw(TEXT),
        other_site=draw(st.booleans()), lines=lines,
    )


async def build_ledger(database_url: str, specs: list[EntrySpec], *, reverse_first: bool, by_site: bool):
    engine, sessions = engine_and_sessions(database_url)
    try:
        org_id, site_id, siren, other_id = await make_books(sessions, aux_codes=AUX)
        await post_drafts(sessions, [
            EntryDraft(org_id=org_id, site_id=other_id if s.other_site else site_id, journal=s.journal, entry_date=s.day,
                       label=s.label, piece_ref=s.piece, funding_source=s.source,
                       lines=[Line(a, amount, "EUR", aux, label) for a, aux, amount, label in s.lines],
                       source_key=f"stripe:txn_{n}" if n % 2 else None)
            for n, s in enumerate(specs)
        ])
        if reverse_first:
            async with transaction(sessions) as session:
                await reverse(session, org_id, 1, reason="erreur de saisie ; « test »")
        async with sessions() as session:
            site_slug = (await session.get(Site, site_id)).slug
        scope = await scope_for(sessions, siren, START, TODAY, site=site_slug if by_site else None)
        files = {}
        async with engine.connect() as conn:
            for fmt in ("fec", "csv", "beancount", "hledger", "trial-balance", "general-ledger"):
                files[fmt] = await service.build(conn, scope, fmt)
            python_fec = b"".join([c async for c in journal.fec_python(conn, scope)])
        async with sessions() as session:
            rows = await trial_balance(session, org_id=org_id, site_id=scope.site_id, start=START, end=TODAY)
        return scope, files, python_fec, {(r.account, r.currency): r.balance for r in rows if r.balance}
    finally:
        await engine.dispose()


def _nonzero(balances: dict) -> dict:
    return {k: v for k, v in balances.items() if v}


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(specs=st.lists(entries(), min_size=1, max_size=10), reverse_first=st.booleans(), by_site=st.booleans())
def test_random_ledgers_export_valid_files_that_agree_to_the_cent(database_url, tmp_path_factory, specs, reverse_first, by_site):
    scope, files, python_fec, expected = run_async(
        lambda: build_ledger(database_url, specs, reverse_first=reverse_first, by_site=by_site))
    directory = tmp_path_factory.mktemp("exports")

    # FEC: every rule of §4, and the same bytes whether PostgreSQL or Python formats it.
    name = journal.fec_filename(scope)
    assert fec_checker.check_fec(name, files["fec"]) == []
    assert files["fec"] == python_fec
    fec = {(account, "EUR"): v for account, v in fec_checker.balances(files["fec"]).items()}

    bean = directory / "books.beancount"
    bean.write_bytes(files["beancount"])
    result = bean_check(bean)
    assert result.returncode == 0, result.stdout + result.stderr

    ledger = directory / "books.journal"
    ledger.write_bytes(files["hledger"])
    result = hledger_check(ledger)
    assert result.returncode == 0, result.stdout + result.stderr

    assert _nonzero(fec) == expected
    assert _nonzero(journal_csv_balances(files["csv"])) == expected
    assert _nonzero(beancount_balances(bean)) == expected
    assert _nonzero(hledger_balances(ledger)) == expected


async def test_a_closed_month_exports_identically_twice_and_its_hash_is_logged(database_url, sessions, engine, tmp_path):
    org_id, site_id, siren, _ = await make_books(sessions)
    today = dt.date.today()
    first_of_month = today.replace(day=1)
    last_month_end = first_of_month - dt.timedelta(days=1)
    day = last_month_end.replace(day=10)
    await post_drafts(sessions, [
        EntryDraft(org_id=org_id, site_id=site_id, journal="BQ", entry_date=day, label="Mécénat", piece_ref="VIR-1",
                   funding_source="private", lines=[Line("512", 250000), Line("7542", -250000)]),
        EntryDraft(org_id=org_id, site_id=site_id, journal="ST", entry_date=day, label="Don", piece_ref="ch_1",
                   funding_source="crowdfunding", lines=[Line("5115", 4885), Line("627", 115), Line("75411", -5000)],
                   source_key="stripe:txn_1"),
    ])
    async with transaction(sessions) as session:
        await close_month(session, org_id, last_month_end.strftime("%Y-%m"))
    async with sessions() as session:
        scope = await service.resolve_scope(session, siren=siren, site=None, start=last_month_end.replace(day=1),
                                            end=last_month_end)
    assert scope.closed
    for fmt in ("fec", "csv", "beancount", "hledger"):
        first = await service.write_export(engine, sessions, scope, fmt, tmp_path / f"a-{fmt}", taken_by="test")
        second = await service.write_export(engine, sessions, scope, fmt, tmp_path / f"b-{fmt}", taken_by="test")
        assert first.path.read_bytes() == second.path.read_bytes()
        assert first.digest.hexdigest == second.digest.hexdigest
    fec_dir, fec_name = tmp_path / "a-fec", monthly_fec_name(siren, last_month_end)
    description = fec_name.replace(".txt", "-description.txt")
    assert sorted(p.name for p in fec_dir.iterdir()) == [description, fec_name]
    assert (fec_dir / description).read_bytes() == (tmp_path / "b-fec" / description).read_bytes()
    async with sessions() as session:
        logs = (await session.scalars(select(ExportLog).where(ExportLog.format == "fec"))).all()
    assert [log.sha256 for log in logs] == [hashlib.sha256((fec_dir / fec_name).read_bytes()).hexdigest()] * 2
    assert all(log.closed and log.rows == 5 and log.channel == "cli" and log.taken_by == "test" for log in logs)


async def test_the_fec_refuses_a_period_with_foreign_currency_and_names_it(database_url, sessions, engine):
    org_id, site_id, siren, _ = await make_books(sessions)
    await post_drafts(sessions, [
        EntryDraft(org_id=org_id, site_id=site_id, journal="BQ", entry_date=dt.date.today(), label="Don de Genève",
                   piece_ref="VIR-CHF", funding_source="private", lines=[Line("512", 1000, "CHF"), Line("7542", -1000, "CHF")]),
    ])
    scope = await scope_for(sessions, siren, dt.date.today(), dt.date.today())
    async with engine.connect() as conn:
        with pytest.raises(ExportError, match="CHF"):
            await service.build(conn, scope, "fec")
        # The other formats carry every currency.
        assert b"10.00 CHF" in await service.build(conn, scope, "hledger")
        assert b"10.00 CHF" in await service.build(conn, scope, "beancount")


def test_the_fec_checker_catches_each_broken_rule():
    good = ("JournalCode\tJournalLib\tEcritureNum\tEcritureDate\tCompteNum\tCompteLib\tCompAuxNum\tCompAuxLib\tPieceRef\t"
            "PieceDate\tEcritureLib\tDebit\tCredit\tEcritureLet\tDateLet\tValidDate\tMontantdevise\tIdevise\n"
            "BQ\tBanque\t1\t20261103\t512\tBanque\t\t\tVIR-1\t20261103\tMécénat\t100,00\t0,00\t\t\t20261104\t\t\n"
            "BQ\tBanque\t1\t20261103\t7542\tMécénat\t\t\tVIR-1\t20261103\tMécénat\t0,00\t100,00\t\t\t20261104\t\t\n")
    name = "912345675FEC20261231.txt"
    assert fec_checker.check_fec(name, good.encode()) == []
    broken = {
        "unbalanced": good.replace("0,00\t100,00", "0,00\t90,00"),
        "both sides": good.replace("100,00\t0,00", "100,00\t5,00"),
        "thousands": good.replace("100,00\t0,00", "1 100,00\t0,00"),
        "decimal point": good.replace("100,00\t0,00", "100.00\t0,00"),
        "bad date": good.replace("20261103\t512", "2026-11-03\t512"),
        "gap": good.replace("\t1\t", "\t2\t"),
        "valid before": good.replace("20261104", "20261101"),
        "two pieces": good.replace("VIR-1\t20261103\tMécénat\t0,00", "VIR-2\t20261103\tMécénat\t0,00"),
        "no label": good.replace("Banque\t\t\tVIR-1\t20261103\tMécénat", "Banque\t\t\tVIR-1\t20261103\t"),
        "aux alone": good.replace("Banque\t\t\t", "Banque\tADH1\t\t"),
        "bad account": good.replace("\t512\t", "\t51\t"),
        "separator": good.replace("\t", ";"),
        "no final newline": good.rstrip("\n"),
    }
    for why, text in broken.items():
        assert fec_checker.check_fec(name, text.encode()), why
    assert fec_checker.check_fec("912345675FEC2026.txt", good.encode())
    assert fec_checker.check_fec(name, ("\ufeff" + good).encode())
