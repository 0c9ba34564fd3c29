"""Annual accounts (ANC 2018-06): a small set of books computed by hand, to the cent, on both
databases; the à-nouveaux ignored; assets = liabilities; the same figures as the trial balance."""

from __future__ import annotations

import datetime as dt

import pytest

from funding.db import transaction
from funding.ledger.annual import AnnualAccountsError, annual_accounts, balance_line, fiscal_year, parse_year
from funding.ledger.service import post, revenue_by_source, trial_balance
from tests.support.annual import an_entry, check_bilan_against_trial_balance, seed_hand_books


def _lines(rows):
    return {r.key: (r.n, r.n1) for r in rows}


async def _accounts(sessions, world, year=2025, site_id=None):
    async with sessions() as session:
        return await annual_accounts(session, org_id=world.org_id, year=year, site_id=site_id)


async def test_hand_computed_accounts_to_the_cent(sessions, world):
    await seed_hand_books(sessions, world)
    acc = await _accounts(sessions, world)
    income = _lines(acc.income)
    assert (acc.start, acc.end, acc.previous_start, acc.previous_end) == (
        dt.date(2025, 1, 1), dt.date(2025, 12, 31), dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    assert income["ventes_services"] == (100000, 0)
    assert income["dons"] == (50000, 0)
    assert income["subventions"] == (0, 500000)
    assert income["charges_externes"] == (1500, 0)
    assert income["amortissements"] == (40000, 40000)
    assert income["produits_exploitation"] == (150000, 500000)
    assert income["charges_exploitation"] == (41500, 40000)
    assert income["resultat_exploitation"] == (108500, 460000)
    assert income["reports_fonds_dedies"] == (0, 100000)
    assert income["utilisations_fonds_dedies"] == (60000, 0)
    assert income["total_produits"] == (210000, 500000)
    assert income["total_charges"] == (41500, 140000)
    assert income["excedent"] == acc.result == (168500, 360000)

    in_kind = _lines(acc.in_kind)
    assert in_kind["personnel_benevole"] == (118800, 0) and in_kind["benevolat"] == (118800, 0)
    assert in_kind["emplois"] == in_kind["contributions"] == (118800, 0)

    actif, passif = _lines(acc.actif), _lines(acc.passif)
    assert actif["immo_corporelles"] == (40000, 80000)
    assert actif["autres_creances"] == (200000, 200000)
    assert actif["disponibilites"] == (418500, 370000)
    assert passif["report_a_nouveau"] == (430000, 70000)
    assert passif["resultat"] == (168500, 360000)
    assert passif["fonds_dedies"] == (40000, 100000)
    assert passif["dettes_fiscales"] == (20000, 0)
    assert passif["dettes_fournisseurs"] == (0, 120000)
    assert acc.total_actif == acc.total_passif == (658500, 650000)
    assert actif["total_actif"] == passif["total_passif"] == (658500, 650000)
    assert acc.balanced

    assert _lines(acc.dedicated) == {"debut": (100000, 0), "reports": (0, 100000), "utilisations": (60000, 0),
                                     "fin": (40000, 100000)}
    assert {r.key: (r.n, r.n1) for r in acc.sources} == {"self": (210000, 500000)}


async def test_the_figures_are_the_trial_balance_s_without_the_a_nouveaux(sessions, world):
    await seed_hand_books(sessions, world, with_an=False)
    acc = await _accounts(sessions, world)
    async with sessions() as session:
        year = await trial_balance(session, org_id=world.org_id, start=acc.start, end=acc.end)
        to_end = await trial_balance(session, org_id=world.org_id, end=acc.end)
        before = await trial_balance(session, org_id=world.org_id, end=acc.start - dt.timedelta(days=1))
    assert acc.result[0] == -sum(r.balance for r in year if r.account[0] in "67")
    assert _lines(acc.passif)["report_a_nouveau"][0] == -sum(r.balance for r in before if r.account[0] in "67")
    expected: dict[str, int] = {}
    for r in to_end:
        if r.account[0] in "12345" and r.balance:
            line = balance_line(r.account, r.balance)
            expected[line] = expected.get(line, 0) + (r.balance if line in _lines(acc.actif) else -r.balance)
    shown = {k: n for k, (n, _n1) in {**_lines(acc.actif), **_lines(acc.passif)}.items()
             if n and not k.startswith(("groupe_", "total_")) and k not in ("report_a_nouveau", "resultat")}
    assert shown == expected
    assert sum(r.balance for r in to_end if r.account[0] in "12345") + sum(r.balance for r in to_end if r.account[0] in "67") == 0
    # The revenue by funding source is the service's, for each year.
    async with sessions() as session:
        for column, (lo, hi) in ((0, (acc.start, acc.end)), (1, (acc.previous_start, acc.previous_end))):
            by_source = await revenue_by_source(session, org_id=world.org_id, start=lo, end=hi)
            assert {r.source: r.amount for r in by_source} == {r.key: (r.n, r.n1)[column] for r in acc.sources if (r.n, r.n1)[column]}

    # A year's closing then posts its à-nouveaux (journal AN): the accounts do not move by a cent.
    async with transaction(sessions) as session:
        await post(session, an_entry(world))
    again = await _accounts(sessions, world)
    assert (again.income, again.actif, again.passif, again.in_kind) == (acc.income, acc.actif, acc.passif, acc.in_kind)


async def test_per_site_view_and_its_own_balance(sessions, world):
    await seed_hand_books(sessions, world)
    other = await _accounts(sessions, world, site_id=world.other_site_id)
    income = _lines(other.income)
    assert income["ventes_services"] == (100000, 0) and income["dons"] == (50000, 0)
    assert other.result == (150000, 0)
    assert _lines(other.actif)["disponibilites"] == (170000, 0)
    assert _lines(other.passif)["dettes_fiscales"] == (20000, 0)
    assert other.balanced and other.site is not None
    central = await _accounts(sessions, world, site_id=world.site_id)
    assert central.balanced
    whole = await _accounts(sessions, world)
    assert (central.result[0] + other.result[0], central.result[1] + other.result[1]) == whole.result
    assert central.total_actif[0] != whole.total_actif[0]


async def test_a_year_starting_in_july_is_named_by_its_start(sessions, world):
    from funding.orgs.models import Organisation

    await seed_hand_books(sessions, world)
    async with transaction(sessions) as session:
        (await session.get(Organisation, world.org_id)).fiscal_year_start_month = 7
    acc = await _accounts(sessions, world, year=2024)
    assert (acc.start, acc.end, acc.title) == (dt.date(2024, 7, 1), dt.date(2025, 6, 30), "2024-2025")
    income = _lines(acc.income)
    # July 2024 – June 2025: the December 2024 charges, the 2025 sales, gifts of July 2025 not yet.
    assert income["ventes_services"] == (100000, 0) and "dons" not in income
    assert income["amortissements"] == (80000, 0)
    assert income["subventions"] == (0, 500000)
    assert acc.balanced


def test_years_are_checked():
    assert fiscal_year(2026, 1) == (dt.date(2026, 1, 1), dt.date(2026, 12, 31))
    assert fiscal_year(2026, 9) == (dt.date(2026, 9, 1), dt.date(2027, 8, 31))
    assert parse_year(" 2026 ") == 2026
    for bad in ("", "26", "deux", "20266", "-2026"):
        with pytest.raises(AnnualAccountsError, match="exercice invalide"):
            parse_year(bad)


async def test_the_demo_books_balance_for_its_years(sessions):
    from sqlalchemy import select

    from funding.demo.seed import ORG, PARTNER, seed
    from funding.ledger.annual import current_year
    from funding.orgs.models import Organisation

    async with transaction(sessions) as session:
        await seed(session)
    async with sessions() as session:
        orgs = {o.siren: o for o in (await session.scalars(select(Organisation))).all()}
        this = current_year(dt.date.today(), orgs[ORG["siren"]].fiscal_year_start_month)
        kind = 0
        for siren in (ORG["siren"], PARTNER["siren"]):
            for year in (this, this - 1):
                acc = await annual_accounts(session, org_id=orgs[siren].id, year=year)
                assert acc.balanced and acc.total_actif == acc.total_passif, (siren, year)
                rows = await trial_balance(session, org_id=orgs[siren].id, start=acc.start, end=acc.end)
                # The bilan's lines are the trial balance's classes 1 to 5 at the year's end.
                check_bilan_against_trial_balance(acc, await trial_balance(session, org_id=orgs[siren].id, start=acc.start,
                                                                           end=acc.end, openings=True))
                assert acc.result[0] == -sum(r.balance for r in rows if r.account[0] in "67" and r.currency == acc.currency)
                by_source = await revenue_by_source(session, org_id=orgs[siren].id, start=acc.start, end=acc.end)
                assert {r.source: r.amount for r in by_source} == {r.key: r.n for r in acc.sources if r.n}
                if siren == ORG["siren"]:
                    kind += _lines(acc.in_kind)["contributions"][0]
                    assert acc.total_actif[0] > 0 or year != this
    assert kind == 126 * 1188 + 180000 + 65000 + 4850 * 1188 // 100
