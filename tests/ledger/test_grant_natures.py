"""Grants booked by their nature across two year-ends: operating (741), multi-year (487),
restricted (fonds dédiés 6894/194/7894), investment (131/139/777) with the asset it funded
(6811/28183); the year-end entries posted once; bad grants refused; complete SCDL rows."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from sqlalchemy import func, select

from funding.db import transaction
from funding.exports.report import SCDL_COLUMNS, scdl_rows
from funding.ledger.models import Entry, FixedAsset, Grant, Posting
from funding.ledger.records import Record, RecordError, record_many
from funding.ledger.service import close_month, close_months
from funding.ledger.verify import verify_org
from funding.ledger.yearend import depreciated, post_year_end, year_end_drafts
from funding.orgs.models import Organisation

Y1, Y2 = 2023, 2024
SIRET = "20005376700014"  # Région Auvergne-Rhône-Alpes
REQUIRED_SCDL = ("nomAttribuant", "idAttribuant", "dateConvention", "nomBeneficiaire", "objet", "montant", "nature",
                 "conditionsVersement", "datesPeriodeVersement", "notificationUE", "pourcentageSubvention")


async def _record(sessions, *records):
    async with transaction(sessions) as session:
        return await record_many(session, list(records), created_by="test")


async def _close_year(sessions, org_id: int, year: int) -> None:
    """Its twelve months (closing the year before first, as the demo does, where it has entries)."""
    for month in range(1, 13):
        async with transaction(sessions) as session:
            await close_months(session, org_id, [f"{year}-{month:02d}"], closed_by="test")


async def _balances(sessions, org_id: int, *, start: dt.date | None = None, end: dt.date,
                    openings: bool = False) -> dict[str, int]:
    """Per account, from the first entry (à-nouveaux left out) or from ``start`` (with them if ``openings``)."""
    query = (select(Posting.account_number, func.sum(Posting.amount)).join(Entry, Entry.id == Posting.entry_id)
             .where(Entry.org_id == org_id, Entry.number.is_not(None), Entry.entry_date <= end)
             .group_by(Posting.account_number))
    if not openings:
        query = query.where(Entry.journal_code != "AN")
    if start is not None:
        query = query.where(Entry.entry_date >= start)
    async with sessions() as session:
        return {acc: int(total) for acc, total in (await session.execute(query)).all()}


def _grant(reference: str, day: str, amount: str, nature: str, site: str, **more: str) -> Record:
    return Record("grant-notified", day, amount, site=site, funder="Région Auvergne-Rhône-Alpes", funder_siret=SIRET,
                  reference=reference, object="Tiers-lieu", nature=nature, **more)


async def _year_one(sessions, world) -> None:
    s = world.site_slug
    await _record(
        sessions,
        _grant("FONC-1", f"{Y1}-02-01", "8000,00", "operating", s),
        _grant("PLURI-1", f"{Y1}-03-15", "50000,00", "multi-year", s, years="3"),
        Record("grant-paid", f"{Y1}-04-01", "25000,00", reference="PLURI-1", piece_ref="RELEVE-04"),
        _grant("AFF-1", f"{Y1}-05-10", "20000,00", "restricted", s),
        Record("expense", f"{Y1}-09-30", "12000,00", site=s, debit="606", reference="AFF-1", label="Ateliers",
               piece_ref="F-0930"),
        _grant("EQUIP-1", f"{Y1}-06-01", "12000,00", "investment", s),
        Record("asset", f"{Y1}-07-01", "12000,00", site=s, debit="2183", life="3", reference="EQUIP-1",
               label="Découpeuse laser du FabLab", piece_ref="F-0701"),
    )


async def test_each_nature_books_as_described_across_two_year_ends(sessions, world, engine):
    await _year_one(sessions, world)
    await _close_year(sessions, world.org_id, Y1)
    end1 = dt.date(Y1, 12, 31)
    b = await _balances(sessions, world.org_id, end=end1)
    # Multi-year: a third of 50 000 € is this year's, two thirds wait in 487.
    assert b["487"] == -3_333_334
    # Restricted: 8 000 € of 20 000 € unspent become fonds dédiés.
    assert (b["6894"], b["194"]) == (800_000, -800_000)
    # The laser cutter, bought on 1 July for 12 000 € over 3 years: 184 days of 365 the first year.
    assert (b["2183"], b["28183"], b["6811"]) == (1_200_000, -201_644, 201_644)
    # The equipment grant stays in 131; its share of the depreciation goes to 777 through 139.
    assert (b["131"], b["139"], b["777"]) == (-1_200_000, 201_644, -201_644)
    # Operating 8 000 + multi-year 16 666,66 + restricted 20 000 in 741.
    assert b["741"] == -(800_000 + 1_666_666 + 2_000_000)

    s = world.site_slug
    await _record(
        sessions,
        Record("grant-paid", f"{Y2}-02-01", "25000,00", reference="PLURI-1", piece_ref="RELEVE-02"),
        Record("expense", f"{Y2}-03-31", "5000,00", site=s, debit="622", reference="AFF-1", label="Animation",
               piece_ref="F-0331"),
    )
    await _close_year(sessions, world.org_id, Y2)
    end2, start2 = dt.date(Y2, 12, 31), dt.date(Y2, 1, 1)
    b = await _balances(sessions, world.org_id, end=end2)
    year2 = await _balances(sessions, world.org_id, start=start2, end=end2)
    assert b["487"] == -1_666_667 and year2["741"] == -1_666_667  # the second third released to 741
    # The same balances seen from the second year: its à-nouveaux (journal AN) and its own entries.
    opened = await _balances(sessions, world.org_id, start=start2, end=end2, openings=True)
    assert {acc: opened[acc] for acc in ("487", "194", "28183", "139", "131")} == {
        acc: b[acc] for acc in ("487", "194", "28183", "139", "131")}
    assert b["194"] == -300_000 and (year2["7894"], year2.get("6894", 0)) == (-500_000, 0)  # 5 000 € spent back
    assert b["28183"] == -601_644 and year2["6811"] == 400_000  # a full year: 4 000 €
    assert b["139"] == 601_644 and year2["777"] == -400_000
    assert b["131"] == -1_200_000 and b["441"] == 800_000 + 5_000_000 + 2_000_000 + 1_200_000 - 5_000_000  # granted less paid
    async with engine.connect() as conn:  # the year-end entries are entries like any: numbered, chained, sealed
        assert (await verify_org(conn, world.org_id)).ok


async def test_the_year_end_posts_nothing_twice(sessions, world):
    await _year_one(sessions, world)
    start, end = dt.date(Y1, 1, 1), dt.date(Y1, 12, 31)
    async with transaction(sessions) as session:
        first = await post_year_end(session, world.org_id, start, end)
    assert len(first.created) == 4  # deferral, fonds dédiés, depreciation, release
    keys = sorted(e.source_key or "" for e in first.created)
    assert keys == sorted(f"yearend:{world.org_id}:{Y1}1231:{what}" for what in (
        f"deferral:{await _grant_id(sessions, 'PLURI-1')}", f"dedicated:{await _grant_id(sessions, 'AFF-1')}",
        f"release:{await _grant_id(sessions, 'EQUIP-1')}", f"depreciation:{await _asset_id(sessions)}"))
    async with transaction(sessions) as session:
        assert await year_end_drafts(session, world.org_id, start, end) == []
        again = await post_year_end(session, world.org_id, start, end)
    assert again.entries == []
    before = await _balances(sessions, world.org_id, end=end)
    await _close_year(sessions, world.org_id, Y1)  # the closing of December runs it a third time
    assert await _balances(sessions, world.org_id, end=end) == before
    async with sessions() as session:
        assert await session.scalar(select(func.count(Entry.id)).where(Entry.source_key.like("yearend:%"))) == 4
    async with transaction(sessions) as session:  # and once the year is closed, there is nothing left to do
        assert await year_end_drafts(session, world.org_id, start, end) == []


async def test_a_later_expense_of_the_same_year_is_booked_by_a_second_run(sessions, world):
    await _year_one(sessions, world)
    start, end = dt.date(Y1, 1, 1), dt.date(Y1, 12, 31)
    async with transaction(sessions) as session:
        await post_year_end(session, world.org_id, start, end)
    await _record(sessions, Record("expense", f"{Y1}-12-15", "3000,00", site=world.site_slug, debit="606",
                                   reference="AFF-1", label="Fournitures", piece_ref="F-1215"))
    async with transaction(sessions) as session:
        (draft,) = await year_end_drafts(session, world.org_id, start, end)
        await post_year_end(session, world.org_id, start, end)
    assert draft.source_key == f"yearend:{world.org_id}:{Y1}1231:dedicated-2:{await _grant_id(sessions, 'AFF-1')}"
    assert [(ln.account, ln.amount) for ln in draft.lines] == [("194", 300_000), ("7894", -300_000)]
    b = await _balances(sessions, world.org_id, end=end)
    assert b["194"] == -500_000


async def _grant_id(sessions, reference: str) -> int:
    async with sessions() as session:
        return await session.scalar(select(Grant.id).where(Grant.reference == reference))


async def _asset_id(sessions) -> int:
    async with sessions() as session:
        return await session.scalar(select(FixedAsset.id))


def test_depreciation_is_prorated_in_days_and_stops_at_the_cost():
    asset = FixedAsset(acquired_on=dt.date(2024, 3, 1), cost=1_000_000, useful_life=4)
    jan = 1
    assert depreciated(asset, dt.date(2023, 1, 1), jan) == 0
    assert depreciated(asset, dt.date(2024, 1, 1), jan) == 209_016  # a quarter of 10 000 € for 306 days of 366
    assert depreciated(asset, dt.date(2028, 1, 1), jan) == 1_000_000
    assert depreciated(asset, dt.date(2030, 1, 1), jan) == 1_000_000
    # A fiscal year from September: bought 1 March 2024, in the year 2023-09-01 – 2024-08-31 (366 days).
    assert depreciated(asset, dt.date(2023, 9, 1), 9) == round(1_000_000 * 184 / 366 / 4)


@pytest.mark.parametrize(("record", "message"), [
    (Record("grant-notified", f"{Y1}-01-10", "1000", site="SITE", funder="Commune", reference="R-1", object="O"),
     "SIRET du financeur manquant"),
    (Record("grant-notified", f"{Y1}-01-10", "1000", site="SITE", funder="Commune", funder_siret=SIRET, reference="R-1",
            object="O", nature="pluriannuelle"), "nature de subvention inconnue"),
    (Record("grant-notified", f"{Y1}-01-10", "1000", site="SITE", funder="Commune", funder_siret=SIRET, reference="R-1",
            object="O", nature="multi-year", years="1"), "de 2 à 10 ans"),
    (Record("grant-notified", f"{Y1}-01-10", "1000", site="SITE", funder="Commune", funder_siret=SIRET, reference="R-1",
            object="O", nature="multi-year"), "nombre d'années de la subvention pluriannuelle invalide"),
    (Record("grant-notified", f"{Y1}-01-10", "1000", site="SITE", funder="Commune", funder_siret=SIRET, reference="R-1",
            object="O", nature="operating", years="3"), "seule une subvention pluriannuelle"),
    (Record("asset", f"{Y1}-01-10", "1000", site="SITE", debit="606", life="3", label="L", piece_ref="P"),
     "compte d'immobilisation invalide"),
    (Record("asset", f"{Y1}-01-10", "1000", site="SITE", debit="2183", life="0", label="L", piece_ref="P"),
     "durée d'amortissement invalide"),
    (Record("expense", f"{Y1}-01-10", "1000", site="SITE", debit="6811", label="L", piece_ref="P"),
     "compte 60 à 67"),
    (Record("expense", f"{Y1}-01-10", "1000", site="SITE", debit="606", label="L", piece_ref="P", reference="NOPE"),
     "subvention inconnue : NOPE"),
])
async def test_bad_grants_and_purchases_are_refused_and_nothing_is_written(sessions, world, record, message):
    record = dataclasses.replace(record, site=world.site_slug)
    ok = Record("patronage", f"{Y1}-01-05", "300", site=world.site_slug, funder="Mécène", piece_ref="M-1")
    with pytest.raises(RecordError, match=message):
        await _record(sessions, ok, record)
    async with sessions() as session:
        assert await session.scalar(select(func.count(Entry.id))) == 0
        assert await session.scalar(select(func.count(Grant.id))) == 0
        assert await session.scalar(select(func.count(FixedAsset.id))) == 0


async def test_an_asset_is_funded_only_by_an_investment_grant(sessions, world):
    await _record(sessions, _grant("FONC-2", f"{Y1}-02-01", "8000,00", "operating", world.site_slug))
    with pytest.raises(RecordError, match="n'est pas une subvention d'investissement"):
        await _record(sessions, Record("asset", f"{Y1}-03-01", "1000", site=world.site_slug, debit="2184", life="5",
                                       reference="FONC-2", label="Tables", piece_ref="F-1"))
    async with sessions() as session:
        assert await session.scalar(select(func.count(FixedAsset.id))) == 0


async def test_scdl_rows_fill_every_required_field(sessions, world):
    await _year_one(sessions, world)
    await _record(sessions, Record("grant-paid", f"{Y1}-11-02", "25000,00", reference="PLURI-1", piece_ref="RELEVE-11"))
    async with sessions() as session:
        rows = {r["referenceDecision"]: r for r in await scdl_rows(session)}
    assert set(rows) == {"FONC-1", "PLURI-1", "AFF-1", "EQUIP-1"}
    for row in rows.values():
        assert list(row) == list(SCDL_COLUMNS)
        assert all(row[field] for field in REQUIRED_SCDL), row
        assert row["idAttribuant"] == SIRET
    assert rows["PLURI-1"]["datesPeriodeVersement"] == f"{Y1}-04-01/{Y1}-11-02"
    assert rows["PLURI-1"]["conditionsVersement"] == "échelonné"
    # Not paid yet: the period the grant covers (its convention's date to its fiscal year's end).
    assert rows["FONC-1"]["datesPeriodeVersement"] == f"{Y1}-02-01/{Y1}-12-31"
    assert rows["FONC-1"]["conditionsVersement"] == "unique" and rows["FONC-1"]["montant"] == "8000.00"


async def test_the_asset_register_from_the_command_line(settings, sessions, world):
    from tests.support.cli import funding as cli

    await _record(sessions, _grant("EQUIP-2", f"{Y1}-06-01", "6000,00", "investment", world.site_slug))
    r = await cli(settings, "ledger", "assets", "--add", "Mobilier de l'atelier", "--site", world.site_slug,
                  "--date", f"{Y1}-07-01", "--cost", "6000,00", "--account", "2184", "--life", "5", "--grant", "EQUIP-2",
                  "--piece", "F-2023-118")
    assert r.exit_code == 0 and "recorded as entry 2" in r.stdout, r.stderr
    bad = await cli(settings, "ledger", "assets", "--add", "Tables", "--site", world.site_slug, "--date", f"{Y1}-07-01",
                    "--cost", "600", "--account", "2184", "--life", "0", "--piece", "F-1")
    assert bad.exit_code != 0 and "durée d'amortissement invalide" in bad.stderr and "nothing was recorded" in bad.stderr
    async with transaction(sessions) as session:
        await post_year_end(session, world.org_id, dt.date(Y1, 1, 1), dt.date(Y1, 12, 31))
    listing = await cli(settings, "ledger", "assets")
    assert listing.exit_code == 0, listing.stderr
    (line,) = [ln for ln in listing.stdout.splitlines() if "Mobilier de l'atelier" in ln]
    # 1 200 € a year, 184 days of 365 the first: 604,93 € depreciated, 5 395,07 € net.
    assert "2184" in line and "6000,00" in line and "604,93" in line and "5395,07" in line and "EQUIP-2" in line
    async with sessions() as session:
        assert await session.scalar(select(func.count(FixedAsset.id))) == 1


async def test_staff_choose_the_nature_on_the_record_page(client, sessions, settings, world):
    from tests.support.web import csrf_of, login_as

    await login_as(client, sessions, settings, world.users["staff"])
    page = await client.get("/admin/ledger/record")
    assert 'name="nature"' in page.text and "Subvention affectée (fonds dédiés)" in page.text
    form = {"csrf_token": csrf_of(page.text), "kind": "grant-notified", "site": world.site_slug, "date": f"{Y1}-05-10",
            "amount": "20 000,00", "funder": "Commune de Courpière", "funder_siret": SIRET, "reference": "AFF-9",
            "object": "Ateliers numériques", "currency": "EUR", "nature": "restricted"}
    bad = await client.post("/admin/ledger/record", data={**form, "nature": "multi-year", "years": "1"})
    assert bad.status_code == 400 and "de 2 à 10 ans" in bad.text
    no_siret = await client.post("/admin/ledger/record", data={**form, "funder_siret": ""})
    assert no_siret.status_code == 400 and "SIRET du financeur manquant" in no_siret.text
    assert (await client.post("/admin/ledger/record", data=form)).status_code == 303
    async with sessions() as session:
        grant = await session.scalar(select(Grant))
    assert (grant.reference, grant.nature, grant.years, grant.funder_siret) == ("AFF-9", "restricted", 1, SIRET)


async def test_a_fiscal_year_from_september_posts_its_year_end_when_august_closes(sessions, world):
    async with transaction(sessions) as session:
        org = await session.get(Organisation, world.org_id)
        org.fiscal_year_start_month = 9
    await _record(sessions, _grant("PLURI-SEPT", f"{Y1}-10-01", "10000,00", "multi-year", world.site_slug, years="2"))
    for period in [f"{Y1}-{m:02d}" for m in (10, 11, 12)] + [f"{Y2}-{m:02d}" for m in range(1, 9)]:
        async with transaction(sessions) as session:
            await close_month(session, world.org_id, period, closed_by="test")
        b = await _balances(sessions, world.org_id, end=dt.date(Y2, 12, 31))
        if period != f"{Y2}-08":
            assert "487" not in b, period  # not the fiscal year's end: nothing deferred yet
    assert b["487"] == -500_000 and b["741"] == -500_000
    async with sessions() as session:
        entry = await session.scalar(select(Entry).where(Entry.source_key.like("yearend:%")))
    assert (entry.entry_date, entry.journal_code) == (dt.date(Y2, 8, 31), "OD")


async def test_a_grant_recorded_before_the_siret_was_required_stays_out_of_the_scdl_file(sessions, world):
    await _record(sessions, _grant("FONC-3", f"{Y1}-02-01", "8000,00", "operating", world.site_slug))
    async with transaction(sessions) as session:
        session.add(Grant(org_id=world.org_id, site_id=world.site_id, funder_name="Commune", funder_siret=None,
                          reference="OLD-1", convention_date=dt.date(Y1, 1, 5), object="Fonctionnement", amount=100_000,
                          currency="EUR"))
    async with sessions() as session:
        assert [r["referenceDecision"] for r in await scdl_rows(session)] == ["FONC-3"]


async def test_grants_of_every_nature_come_in_by_a_csv_file(sessions, world):
    """The nature (and a multi-year grant's years) is a column of the import, as on the command
    line and the page; a bad nature names its line and writes nothing."""
    from funding.ledger.models import GrantNature
    from funding.ledger.records import parse_csv

    s = world.site_slug
    head = "kind;site;date;amount;funder;funder_siret;reference;object;nature;years\n"
    rows = (f"grant-notified;{s};{Y1}-02-01;8000,00;Commune;{SIRET};CSV-FONC;Animation;operating;\n"
            f"grant-notified;{s};{Y1}-03-15;30000,00;Région;{SIRET};CSV-PLURI;Tiers-lieu;multi-year;3\n"
            f"grant-notified;{s};{Y1}-05-10;20000,00;Département;{SIRET};CSV-AFF;Ateliers;restricted;\n"
            f"grant-notified;{s};{Y1}-06-01;12000,00;État;{SIRET};CSV-EQUIP;Découpeuse laser;investment;\n")
    bad = parse_csv((head + rows + f"grant-notified;{s};{Y1}-07-01;100;Commune;{SIRET};CSV-X;X;pluriannuelle;\n").encode())
    with pytest.raises(RecordError, match="ligne 6, colonne nature : nature de subvention inconnue"):
        await _record(sessions, *bad)
    async with sessions() as session:
        assert await session.scalar(select(func.count(Grant.id)).where(Grant.org_id == world.org_id)) == 0

    await _record(sessions, *parse_csv((head + rows).encode()))
    async with sessions() as session:
        grants = {g.reference: (g.nature, g.years) for g in (await session.scalars(
            select(Grant).where(Grant.org_id == world.org_id))).all()}
        credited = dict((await session.execute(
            select(Grant.reference, Posting.account_number).join(Entry, Entry.grant_id == Grant.id)
            .join(Posting, Posting.entry_id == Entry.id).where(Grant.org_id == world.org_id, Posting.amount < 0))).all())
    assert grants == {"CSV-FONC": (GrantNature.OPERATING, 1), "CSV-PLURI": (GrantNature.MULTI_YEAR, 3),
                      "CSV-AFF": (GrantNature.RESTRICTED, 1), "CSV-EQUIP": (GrantNature.INVESTMENT, 1)}
    assert credited["CSV-EQUIP"].startswith("13") and credited["CSV-FONC"].startswith("74")
