"""Fiscal years: a year closes after its twelve months, opens the next with its à-nouveaux, and
the general ledger, the trial balance and the FEC of any period agree across years."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import pytest
from sqlalchemy import select

from funding.db import transaction
from funding.exports.books import general_ledger
from funding.exports.journal import Scope, fec
from funding.ledger.models import AuxAccount, Closing, Entry, Posting, Seal
from funding.ledger.service import (
    EntryDraft,
    LedgerError,
    close_month,
    close_months,
    close_year,
    credit,
    debit,
    fiscal_year_bounds,
    fiscal_year_of,
    post,
    trial_balance,
)
from funding.ledger.verify import verify_org
from funding.orgs.service import create_organisation, create_site
from tests.support.cli import funding as cli
from tests.support.world import next_siren

Y1, Y2 = 2024, 2025  # two past calendar years, so every date is in the past whatever today is


class Books:
    def __init__(self, org_id: int, siren: str, a: int, b: int) -> None:
        self.org_id, self.siren, self.a, self.b = org_id, siren, a, b


async def books(sessions, start_month: int = 1) -> Books:
    async with transaction(sessions) as session:
        siren = next_siren()
        org = await create_organisation(session, name="Association Exercices", siren=siren, vat_liable=False,
                                        general_interest=True, fiscal_year_start_month=start_month)
        a = await create_site(session, org_id=org.id, slug=f"thiers-{siren[-4:]}", name="Thiers", town="Thiers", is_central=True)
        b = await create_site(session, org_id=org.id, slug=f"celles-{siren[-4:]}", name="Celles", town="Celles-sur-Durolle")
        session.add(AuxAccount(org_id=org.id, code="M-ELISE", label="Élise Fabre"))
    return Books(org.id, siren, a.id, b.id)


def draft(bk: Books, day: dt.date, key: str, lines, *, site: str = "a", journal: str = "BQ") -> EntryDraft:
    return EntryDraft(org_id=bk.org_id, site_id=bk.a if site == "a" else bk.b, journal=journal, entry_date=day,
                      piece_date=day, label=f"pièce {key}", piece_ref=key, funding_source="self", source_key=key,
                      lines=lines)


async def year_one(sessions, bk: Books) -> None:
    """2024: a grant, patronage, a member's unpaid invoice (411, auxiliary kept), bank fees at Celles."""
    async with transaction(sessions) as session:
        await post(session, [
            draft(bk, dt.date(Y1, 3, 10), "g1", [debit("512", 100_000), credit("741", 100_000)]),
            draft(bk, dt.date(Y1, 5, 2), "p1", [debit("512", 10_600), credit("7542", 10_600)]),
            draft(bk, dt.date(Y1, 9, 30), "f1", [debit("411", 24_000, aux="M-ELISE"), credit("706", 24_000)], journal="VT"),
            draft(bk, dt.date(Y1, 11, 5), "c1", [debit("627", 2_000), credit("512", 2_000)], site="b"),
        ])


def months(year: int, start_month: int = 1) -> list[str]:
    start, _ = fiscal_year_bounds(year, start_month)
    return [f"{(start.replace(day=15) + dt.timedelta(days=31 * i)):%Y-%m}" for i in range(12)]


async def balances(sessions, bk: Books, start: dt.date, end: dt.date) -> dict[tuple[str, str], tuple[int, int, int]]:
    """Trial balance with openings: (account, currency) → (opening, debit, credit)."""
    async with sessions() as session:
        rows = await trial_balance(session, org_id=bk.org_id, start=start, end=end, openings=True)
    return {(r.account, r.currency): (r.opening, r.debit, r.credit) for r in rows}


async def ledger(engine, bk: Books, start: dt.date, end: dt.date):
    scope = Scope(org_id=bk.org_id, siren=bk.siren, org_name="Association Exercices", currency="EUR", start=start, end=end)
    lines = []
    async with engine.connect() as conn:
        async for part in general_ledger(conn, scope):
            lines += part
    return lines


async def test_closing_a_year_carries_classes_1_to_5_and_the_result_into_the_next(sessions, engine):
    bk = await books(sessions)
    await year_one(sessions, bk)
    async with transaction(sessions) as session:
        for period in months(Y1):
            await close_month(session, bk.org_id, period)
    with pytest.raises(LedgerError, match=f"clôturez d'abord l'exercice {Y1}"):
        async with transaction(sessions) as session:
            await close_month(session, bk.org_id, f"{Y2}-01")

    async with transaction(sessions) as session:
        done = await close_year(session, bk.org_id, str(Y1), closed_by="Camille")
    assert done.closing.kind == "year" and done.closing.period == str(Y1)
    assert (done.closing.start_date, done.closing.end_date) == (dt.date(Y1, 1, 1), dt.date(Y1, 12, 31))
    assert done.result == {"EUR": 100_000 + 10_600 + 24_000 - 2_000}
    assert len(done.openings) == 2  # one à-nouveaux entry per site

    async with sessions() as session:
        an = (await session.execute(
            select(Entry.site_id, Entry.entry_date, Posting.account_number, Posting.aux_code, Posting.amount)
            .join(Posting, Posting.entry_id == Entry.id).where(Entry.org_id == bk.org_id, Entry.journal_code == "AN")
        )).all()
        seal = await session.scalar(select(Seal).where(Seal.org_id == bk.org_id).order_by(Seal.seq.desc()).limit(1))
        last_month = await session.scalar(select(Closing).where(Closing.org_id == bk.org_id, Closing.period == f"{Y1}-12"))
    assert {r.entry_date for r in an} == {dt.date(Y2, 1, 1)}
    got = {(r.site_id, r.account_number, r.aux_code): r.amount for r in an}
    assert got == {
        (bk.a, "512", None): 110_600, (bk.a, "411", "M-ELISE"): 24_000, (bk.a, "120", None): -134_600,
        (bk.b, "512", None): -2_000, (bk.b, "129", None): 2_000,
    }
    assert seal.kind == "year" and seal.period == str(Y1)
    assert done.closing.prev_hash == last_month.hash and done.closing.grand_total == last_month.grand_total

    # Reopening is impossible, and a year closes only once.
    with pytest.raises(LedgerError, match="déjà clos"):
        async with transaction(sessions) as session:
            await close_year(session, bk.org_id, Y1)
    async with engine.connect() as conn:
        report = await verify_org(conn, bk.org_id)
    assert report.ok, report.problems

    # The next year: its FEC starts with the à-nouveaux; its ledger carries no 2024 revenue.
    async with transaction(sessions) as session:
        await post(session, [
            draft(bk, dt.date(Y2, 2, 10), "p2", [debit("512", 10_000), credit("7542", 10_000)]),
            draft(bk, dt.date(Y2, 6, 20), "r2", [debit("512", 24_000), credit("411", 24_000, aux="M-ELISE")]),
        ])
    start, end = dt.date(Y2, 1, 1), dt.date(Y2, 12, 31)
    scope = Scope(org_id=bk.org_id, siren=bk.siren, org_name="x", currency="EUR", start=start, end=end)
    async with engine.connect() as conn:
        text_ = b"".join([chunk async for chunk in fec(conn, scope)]).decode("utf-8-sig")
    records = [line.split("\t") for line in text_.splitlines()[1:]]
    assert {r[0] for r in records[:5]} == {"AN"} and records[5][0] != "AN"
    assert [r[2] for r in records[:5]] == ["1", "1", "1", "2", "2"]  # EcritureNum: the AN first, from 1

    await agree(sessions, engine, bk, start, end)
    await agree(sessions, engine, bk, dt.date(Y2, 6, 1), dt.date(Y2, 6, 30))
    tb = await balances(sessions, bk, start, end)
    assert tb[("7542", "EUR")] == (0, 0, 10_000)  # 2024's 10 600 € stays in 2024
    june = await balances(sessions, bk, dt.date(Y2, 6, 1), dt.date(Y2, 6, 30))
    assert june[("7542", "EUR")] == (-10_000, 0, 0)
    assert june[("512", "EUR")] == (110_600 - 2_000 + 10_000, 24_000, 0)
    assert june[("411", "EUR")] == (24_000, 0, 24_000)

    # The annual accounts of year two say the same: its result, a balanced bilan, the year before beside.
    from funding.ledger.annual import annual_accounts

    async with sessions() as session:
        acc = await annual_accounts(session, org_id=bk.org_id, year=Y2)
    year_result = -sum(credit_ - debit_ for (account, _), (_, debit_, credit_) in tb.items() if account[0] in "67")
    assert acc.result == (-year_result, 134_600 - 2_000) == (10_000, 132_600)
    assert acc.total_actif == acc.total_passif
    cash = sum(o + d - c for (account, _), (o, d, c) in tb.items() if account.startswith("5"))
    assert acc.total_actif[0] == cash  # the member paid: the association holds only its bank

    # Year two closes the same way: last year's result is carried to report à nouveau (110).
    async with transaction(sessions) as session:
        await close_months(session, bk.org_id, months(Y2))
        second = await close_year(session, bk.org_id, Y2)
    assert second.result == {"EUR": 10_000}
    async with sessions() as session:
        an2 = (await session.execute(
            select(Entry.site_id, Posting.account_number, Posting.amount).join(Posting, Posting.entry_id == Entry.id)
            .where(Entry.org_id == bk.org_id, Entry.journal_code == "AN", Entry.entry_date == dt.date(Y2 + 1, 1, 1))
        )).all()
    assert {(r.site_id, r.account_number): r.amount for r in an2} == {
        (bk.a, "512", ): 110_600 + 10_000 + 24_000, (bk.a, "110"): -134_600, (bk.a, "120"): -10_000,
        (bk.b, "512"): -2_000, (bk.b, "119"): 2_000,
    }
    async with engine.connect() as conn:
        report = await verify_org(conn, bk.org_id)
    assert report.ok, report.problems


async def agree(sessions, engine, bk: Books, start: dt.date, end: dt.date) -> None:
    """The general ledger and the trial balance of [start, end] say the same, account by account."""
    tb = await balances(sessions, bk, start, end)
    gl: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for line in await ledger(engine, bk, start, end):
        key = (line.account, line.currency)
        if line.kind == "opening":
            gl[key][0] = line.balance
        elif line.kind == "total":
            gl[key][1:] = [line.debit, line.credit, line.balance]
    assert set(gl) == set(tb)
    for key, (opening, debit_, credit_) in tb.items():
        assert gl[key] == [opening, debit_, credit_, opening + debit_ - credit_], key
    assert sum(o for o, _, _ in tb.values()) == 0  # what is carried in balances


async def test_a_year_not_yet_closed_carries_its_result_on_12x_not_on_its_revenue(sessions, engine):
    bk = await books(sessions)
    await year_one(sessions, bk)
    async with transaction(sessions) as session:
        await post(session, draft(bk, dt.date(Y2, 2, 10), "p2", [debit("512", 10_000), credit("7542", 10_000)]))
    tb = await balances(sessions, bk, dt.date(Y2, 1, 1), dt.date(Y2, 12, 31))
    assert tb[("7542", "EUR")] == (0, 0, 10_000)
    assert tb[("120", "EUR")] == (-132_600, 0, 0)  # site A's surplus net of Celles' deficit
    assert tb[("512", "EUR")] == (108_600, 10_000, 0)
    assert ("741", "EUR") not in tb and ("627", "EUR") not in tb
    await agree(sessions, engine, bk, dt.date(Y2, 1, 1), dt.date(Y2, 12, 31))
    await agree(sessions, engine, bk, dt.date(Y2, 3, 1), dt.date(Y2, 3, 31))


async def test_a_year_closes_only_after_its_months_and_the_year_before(sessions):
    bk = await books(sessions)
    await year_one(sessions, bk)
    with pytest.raises(LedgerError, match="douze mois"):
        async with transaction(sessions) as session:
            await close_year(session, bk.org_id, Y1)
    async with transaction(sessions) as session:
        await close_months(session, bk.org_id, months(Y1)[:11])
    with pytest.raises(LedgerError, match=f"douze mois de l'exercice {Y1}.*clos jusqu'au {Y1}-11-30"):
        async with transaction(sessions) as session:
            await close_year(session, bk.org_id, Y1)
    async with transaction(sessions) as session:
        await close_months(session, bk.org_id, [f"{Y1}-12"])
    with pytest.raises(LedgerError, match=f"douze mois de l'exercice {Y2}"):
        async with transaction(sessions) as session:
            await close_year(session, bk.org_id, Y2)
    for bad in ("20x4", "24", ""):
        with pytest.raises(LedgerError, match="exercice invalide"):
            async with transaction(sessions) as session:
                await close_year(session, bk.org_id, bad)
    async with sessions() as session:
        assert await session.scalar(select(Closing).where(Closing.org_id == bk.org_id, Closing.kind == "year")) is None


async def test_a_fiscal_year_may_start_in_any_month(sessions):
    assert fiscal_year_bounds(2024, 9) == (dt.date(2024, 9, 1), dt.date(2025, 8, 31))
    assert fiscal_year_of(dt.date(2025, 8, 31), 9) == 2024 and fiscal_year_of(dt.date(2025, 9, 1), 9) == 2025
    bk = await books(sessions, start_month=9)
    async with transaction(sessions) as session:
        await post(session, [
            draft(bk, dt.date(2024, 10, 1), "s1", [debit("512", 5_000), credit("7542", 5_000)]),
            draft(bk, dt.date(2025, 9, 3), "s2", [debit("512", 7_000), credit("7542", 7_000)]),
        ])
        await close_months(session, bk.org_id, months(2024, 9))
    with pytest.raises(LedgerError, match="clôturez d'abord l'exercice 2024"):
        async with transaction(sessions) as session:
            await close_month(session, bk.org_id, "2025-09")
    async with transaction(sessions) as session:
        closed = await close_months(session, bk.org_id, ["2025-09"])  # closes the year 2024-2025 first
    assert [c.kind for c in closed] == ["year", "month"] and closed[0].period == "2024"
    tb = await balances(sessions, bk, dt.date(2025, 9, 1), dt.date(2025, 9, 30))
    assert tb[("7542", "EUR")] == (0, 0, 7_000) and tb[("120", "EUR")] == (0, 0, 5_000)


async def test_close_year_from_the_command_line(settings, sessions):
    bk = await books(sessions)
    await year_one(sessions, bk)
    async with transaction(sessions) as session:
        await close_months(session, bk.org_id, months(Y1))
    bad = await cli(settings, "ledger", "close-year", "deux-mille", "--org", bk.siren)
    assert bad.exit_code != 0 and "exercice invalide" in bad.stderr and "Traceback" not in bad.stderr
    r = await cli(settings, "ledger", "close-year", str(Y1), "--org", bk.siren)
    assert r.exit_code == 0, r.stderr
    assert f"exercice {Y1} clos" in r.stdout and "excédent 1 326,00 €" in r.stdout.replace("\u202f", " ").replace("\xa0", " ")
    again = await cli(settings, "ledger", "close-year", str(Y1), "--org", bk.siren)
    assert again.exit_code != 0 and "déjà clos" in again.stderr


async def test_staff_close_a_year_from_the_closings_page(client, sessions, settings, world):
    from funding.auth.models import User
    from funding.auth.service import grant
    from tests.support.web import csrf_of, login_as

    bk = await books(sessions)
    await year_one(sessions, bk)
    async with transaction(sessions) as session:
        await close_months(session, bk.org_id, months(Y1))
        await grant(session, await session.get(User, world.users["staff"]), "staff", org_id=bk.org_id)
    await login_as(client, sessions, settings, world.users["staff"])
    page = await client.get("/admin/ledger/closings")
    assert page.status_code == 200 and 'name="year"' in page.text
    bad = await client.post("/admin/ledger/closings", data={"csrf_token": csrf_of(page.text), "org": bk.siren, "year": "l'an dernier"})
    assert bad.status_code == 303 and "exercice invalide" in (await client.get("/admin/ledger/closings")).text
    done = await client.post("/admin/ledger/closings", data={"csrf_token": csrf_of(page.text), "org": bk.siren, "year": str(Y1)})
    assert done.status_code == 303
    after = await client.get("/admin/ledger/closings")
    assert f"Exercice {Y1} clôturé" in after.text and f"Exercice {Y1}</td>" in after.text
    async with sessions() as session:
        assert await session.scalar(select(Closing.period).where(Closing.org_id == bk.org_id, Closing.kind == "year")) == str(Y1)
