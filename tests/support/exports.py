"""Validators for the exports (bean-check, hledger, parsers), a ledger builder and a month of money to export."""

from __future__ import annotations

import csv
import datetime as dt
import io
import shutil
import subprocess
import sys
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

from funding.db import create_engine, transaction
from funding.exports import service
from funding.exports.journal import Scope
from funding.ledger.models import AuxAccount
from funding.ledger.records import Record, record_many
from funding.ledger.service import EntryDraft, Line, post
from funding.orgs.service import create_organisation, create_site
from tests.support.db import sealed_sessions, skip_or_fail
from tests.support.world import next_siren

BEAN_CHECK = Path(sys.executable).with_name("bean-check")


def bean_check(path: Path) -> subprocess.CompletedProcess:
    if not BEAN_CHECK.exists() and not shutil.which("bean-check"):
        skip_or_fail("bean-check is not installed (pip install -e '.[test]')")
    exe = str(BEAN_CHECK) if BEAN_CHECK.exists() else "bean-check"
    return subprocess.run([exe, str(path)], capture_output=True, text=True, timeout=120)


def hledger_check(path: Path) -> subprocess.CompletedProcess:
    if not shutil.which("hledger"):
        skip_or_fail("hledger is not installed (apt-get install hledger)")
    return subprocess.run(["hledger", "-f", str(path), "check", "-s", "ordereddates"], capture_output=True, text=True,
                          timeout=120)


def _minor(value: Decimal, exp: int = 2) -> int:
    scaled = value.scaleb(exp)
    assert scaled == scaled.to_integral_value(), value
    return int(scaled)


def beancount_balances(path: Path) -> dict[tuple[str, str], int]:
    from beancount import loader
    from beancount.core.data import Transaction

    entries, errors, _ = loader.load_file(str(path))
    assert not errors, errors
    out: dict[tuple[str, str], int] = defaultdict(int)
    for entry in entries:
        if isinstance(entry, Transaction):
            for p in entry.postings:
                out[(p.account.split(":")[1], p.units.currency)] += _minor(p.units.number)
    return dict(out)


def hledger_balances(path: Path) -> dict[tuple[str, str], int]:
    result = subprocess.run(["hledger", "-f", str(path), "print", "-O", "csv"], capture_output=True, text=True, timeout=120,
                            check=True)
    out: dict[tuple[str, str], int] = defaultdict(int)
    for row in csv.DictReader(io.StringIO(result.stdout)):
        out[(row["account"].split(":")[0], row["commodity"])] += _minor(Decimal(row["amount"]))
    return dict(out)


def journal_csv_balances(data: bytes) -> dict[tuple[str, str], int]:
    from tests.support.fec_checker import cents

    out: dict[tuple[str, str], int] = defaultdict(int)
    for row in csv.DictReader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"):
        out[(row["compte"], row["devise"])] += cents(row["debit"] or "0") - cents(row["credit"] or "0")
    return dict(out)


async def make_books(sessions, *, aux_codes=()) -> tuple[int, int, str, int]:
    """An organisation with two sites and some auxiliary accounts: (org, site, siren, other site)."""
    async with transaction(sessions) as session:
        siren = next_siren()
        org = await create_organisation(session, name="Tiers-lieu « Test » ; réseau", siren=siren)
        site = await create_site(session, org_id=org.id, slug=f"t-{siren}", name="Thiers", town="Thiers", is_central=True)
        other = await create_site(session, org_id=org.id, slug=f"c-{siren}", name="Courpière", town="Courpière")
        for code in aux_codes:
            session.add(AuxAccount(org_id=org.id, code=code, label=f"Adhérent {code}\tà \"part\""))
        await session.flush()
        return org.id, site.id, siren, other.id


async def post_drafts(sessions, drafts: list[EntryDraft]) -> None:
    async with transaction(sessions) as session:
        await post(session, drafts)


async def export_bytes(database_url: str, scope: Scope, fmt: str) -> bytes:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            return await service.build(conn, scope, fmt)
    finally:
        await engine.dispose()


async def scope_for(sessions, siren: str, start: dt.date, end: dt.date, site: str | None = None) -> Scope:
    async with sessions() as session:
        return await service.resolve_scope(session, siren=siren, site=site, start=start, end=end)


def engine_and_sessions(database_url: str):
    engine = create_engine(database_url)
    return engine, sealed_sessions(engine)


async def seed_money(sessions, world) -> None:
    """This month's grant, patronage, two online gifts and rents, for the pages and downloads."""
    day = dt.date.today().replace(day=1)
    async with transaction(sessions) as session:
        await record_many(session, [
            Record("grant-notified", day.isoformat(), "30000,00", site=world.site_slug, funder="Région Auvergne-Rhône-Alpes",
                   funder_siret="20005376700014", reference="AURA-1", object="Fonctionnement"),
            Record("grant-paid", day.isoformat(), "10000,00", reference="AURA-1", piece_ref="RELEVE-1"),
            Record("patronage", day.isoformat(), "5000,00", site=world.site_slug, funder="Fondation X", piece_ref="CONV-1"),
        ], created_by="test")
        await post(session, [
            EntryDraft(org_id=world.org_id, site_id=world.other_site_id, journal="ST", entry_date=day, label="Don en ligne",
                       piece_ref="ch_1", funding_source="crowdfunding", source_key="stripe:txn_1",
                       lines=[Line("5115", 4885), Line("627", 115), Line("75411", -5000)]),
            EntryDraft(org_id=world.org_id, site_id=world.other_site_id, journal="ST", entry_date=day, label="Don en ligne",
                       piece_ref="ch_2", funding_source="crowdfunding", source_key="stripe:txn_2",
                       lines=[Line("5115", 1941), Line("627", 59), Line("75411", -2000)]),
            EntryDraft(org_id=world.org_id, site_id=world.site_id, journal="BQ", entry_date=day, label="Loyers incubateur",
                       piece_ref="VIR-1", funding_source="self", lines=[Line("512", 360000), Line("706", -360000)]),
        ])


def monthly_fec_name(siren: str, month_end: dt.date, fiscal_end: dt.date | None = None) -> str:
    """A monthly FEC's name: the legal file's, with the fiscal year's closing date, then ``_AAAAMM``
    (fiscal year = calendar year unless ``fiscal_end`` says otherwise)."""
    fiscal_end = fiscal_end or dt.date(month_end.year, 12, 31)
    return f"{siren}FEC{fiscal_end:%Y%m%d}_{month_end:%Y%m}.txt"


def fec_name(siren: str, start: dt.date, end: dt.date) -> str:
    """The FEC's name for [start, end] (fiscal year = calendar year): a whole month is a monthly
    file, anything else is named after its end — so a test of "this month so far" holds on the
    month's last day too."""
    whole_month = start.day == 1 and (end + dt.timedelta(days=1)).day == 1 and (start.year, start.month) == (end.year, end.month)
    if whole_month:
        return monthly_fec_name(siren, end)
    return f"{siren}FEC{end:%Y%m%d}.txt"
