"""The financial report of a granted action (cerfa 15059): a hand-built ledger whose totals are
known to the cent, budget against actual under both rules, the grant received, the CSV and the
PDF, who may see it, and the command line's refusals."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from funding.db import transaction
from funding.ledger import grant_report as gr
from funding.ledger.models import Account, Grant, GrantBudgetLine
from funding.ledger.records import Record, record_many
from funding.ledger.service import EntryDraft, credit, debit, post
from tests.support.cli import funding as cli
from tests.support.web import csrf, login_as
from tests.support.world import make_world

CONVENTION = dt.date(2026, 1, 15)
REFERENCE = "CONV-2026-01"
BUDGET = """categorie;libelle;montant
60;Fournitures;1 000,00
62;Honoraires;100,00
64;Animateur;6 000,00
86;Bénévolat;500,00
74;Ville de Clermont;10 000,00
74;Région;2 000,00
75;Dons;500,00
87;Bénévolat;500,00
"""


async def _books(sessions, world) -> Grant:
    """Notified 10 000,00 and paid 6 000,00; tagged charges and products in the convention's year;
    an untagged fee of the same site; a tagged purchase before the convention; another site's."""
    async with transaction(sessions) as session:
        have = set((await session.scalars(select(Account.number).where(Account.org_id == world.org_id))).all())
        for number, label in (("606", "Achats non stockés"), ("641", "Rémunérations du personnel"),
                              ("864", "Personnel bénévole"), ("870", "Bénévolat")):
            if number not in have:  # the chart may already hold it
                session.add(Account(org_id=world.org_id, number=number, label=label))
        await session.flush()
        slug = world.site_slug
        await record_many(session, [
            Record(kind="grant-notified", site=slug, date=CONVENTION.isoformat(), amount="10 000,00", currency="EUR",
                   funder="Ville de Clermont", funder_siret="21630113500010", reference=REFERENCE,
                   object="Ateliers numériques pour les seniors"),
            Record(kind="grant-paid", site=slug, date="2026-03-01", amount="6 000,00", currency="EUR", reference=REFERENCE,
                   piece_ref="VIR-CLERMONT-1"),
        ], created_by="test")
        grant = (await session.scalars(select(Grant).where(Grant.reference == REFERENCE))).one()

        def entry(day: str, lines, *, tagged: bool = True, site_id: int | None = None) -> EntryDraft:
            return EntryDraft(org_id=world.org_id, site_id=site_id or world.site_id, journal="OD", entry_date=dt.date.fromisoformat(day),
                              label="Action ateliers", piece_ref=f"P-{day}", funding_source="public", lines=lines,
                              grant_id=grant.id if tagged else None)

        await post(session, [
            entry("2026-02-03", [debit("606", 123456), credit("512", 123456)]),
            entry("2026-02-04", [debit("627", 1544), credit("512", 1544)]),
            entry("2026-04-30", [debit("641", 500000), credit("512", 500000)]),
            entry("2026-05-20", [debit("864", 70000), credit("870", 70000)]),
            entry("2026-06-01", [debit("512", 25000), credit("75411", 25000)]),
            entry("2026-02-05", [debit("627", 9999), credit("512", 9999)], tagged=False),
            entry("2026-01-10", [debit("606", 5000), credit("512", 5000)]),
            entry("2026-02-06", [debit("606", 7777), credit("512", 7777)], tagged=False, site_id=world.other_site_id),
        ])
        await gr.set_budget(session, grant, gr.parse_budget(BUDGET, "EUR"), created_by="test")
    return grant


def _rows(report: gr.GrantReport) -> list[tuple]:
    return [(r.category, r.detail, r.budget, r.actual, r.gap_pct) for r in report.rows]


async def test_report_sets_the_budget_against_the_tagged_entries_to_the_cent(sessions, world):
    grant = await _books(sessions, world)
    async with sessions() as session:
        report = await gr.grant_report(session, grant)
    assert (report.start, report.end, report.basis) == (CONVENTION, dt.date(2027, 1, 14), "grant")
    assert _rows(report) == [
        ("60", "", 100000, 123456, Decimal("23.5")),
        ("62", "", 10000, 1544, Decimal("-84.6")),
        ("64", "", 600000, 500000, Decimal("-16.7")),
        ("86", "", 50000, 70000, Decimal("40.0")),
        ("74", "Région", 200000, 0, Decimal("-100.0")),
        ("74", "Ville de Clermont", 1000000, 1000000, Decimal("0.0")),
        ("75", "", 50000, 25000, Decimal("-50.0")),
        ("87", "", 50000, 70000, Decimal("40.0")),
    ]
    charges, produits = report.total("charge"), report.total("produit")
    assert (charges.budget, charges.actual, charges.gap_pct) == (760000, 695000, Decimal("-8.6"))
    assert (produits.budget, produits.actual) == (1300000, 1095000)
    assert (report.result.budget, report.result.actual) == (540000, 400000)
    assert (report.received_in_period, report.received_to_date, report.remaining) == (600000, 600000, 400000)


async def test_without_tagged_charges_the_report_takes_the_grants_site(sessions, world):
    grant = await _books(sessions, world)
    async with sessions() as session:
        forced = await gr.grant_report(session, grant, basis="site")
        # A year without any tagged charge falls back to the site's entries by itself.
        later = await gr.grant_report(session, grant, year=2027)
    assert forced.basis == "site" and "lieu" in forced.basis_text
    by_category = {(r.category, r.detail): r.actual for r in forced.rows}
    assert by_category[("62", "")] == 1544 + 9999  # the untagged fee of the same site counts
    assert by_category[("60", "")] == 123456  # not the other site's purchase
    assert later.basis == "site" and (later.start, later.end) == (dt.date(2027, 1, 1), dt.date(2027, 12, 31))
    assert [r.actual for r in later.rows] == [0] * len(later.rows)


async def test_csv_has_numbers_as_numbers_and_the_annex(sessions, world):
    grant = await _books(sessions, world)
    async with sessions() as session:
        report = await gr.grant_report(session, grant)
    text = gr.report_csv(report).decode("utf-8-sig")
    lines = text.split("\r\n")
    assert lines[0] == ";".join(gr.CSV_COLUMNS)
    assert "charges;60;Achats;;1000,00;1234,56;234,56;+23,5;EUR" in lines
    assert "produits;74;Subventions d'exploitation;Région;2000,00;0,00;-2000,00;-100,0;EUR" in lines
    assert "total;;Total des charges;;7600,00;6950,00;-650,00;-8,6;EUR" in lines
    assert "subvention;;subvention_recue_periode;;;6000,00;;;EUR" in lines
    assert "annexe;;objet;Ateliers numériques pour les seniors;;;;;" in lines
    assert f"annexe;;date_convention;{CONVENTION.isoformat()};;;;;" in lines


async def test_pdf_reads_back_the_figures_and_the_annex(sessions, world):
    grant = await _books(sessions, world)
    async with sessions() as session:
        report = await gr.grant_report(session, grant)
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(gr.report_pdf(report))).pages)
    flat = " ".join(text.replace("\u202f", " ").replace("\u00a0", " ").split())
    for expected in ("Compte rendu financier", "Cerfa n° 15059", REFERENCE, "Ville de Clermont", "1 234,56", "+23,5 %",
                     "-84,6 %", "Ateliers numériques pour les seniors", "15 janvier 2026", "6 000,00", "4 000,00",
                     "écritures validées portant la subvention"):
        assert expected in flat, expected


async def test_accountants_see_the_report_members_and_other_organisations_do_not(client, sessions, settings, world):
    grant = await _books(sessions, world)
    base = f"/admin/reports/grants/{grant.id}"
    await login_as(client, sessions, settings, world.users["accountant"])
    page = await client.get(base)
    assert page.status_code == 200 and "Ateliers numériques pour les seniors" in page.text and "+23,5" in page.text
    assert 'name="budget"' not in page.text  # not staff: no budget form
    listing = await client.get("/admin/reports/grants")
    assert listing.status_code == 200 and REFERENCE in listing.text
    csv_response = await client.get(f"{base}/compte-rendu.csv?year=2026")
    assert csv_response.status_code == 200 and "charges;60;Achats" in csv_response.content.decode("utf-8-sig")
    pdf = await client.get(f"{base}/compte-rendu.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF") and pdf.headers["content-type"] == "application/pdf"
    bad = await client.get(f"{base}?year=deux-mille")
    assert bad.status_code == 400 and "Année invalide" in bad.text
    token = await csrf(client, base)
    refused = await client.post(base, data={"csrf_token": token, "budget": BUDGET})
    assert refused.status_code == 403

    await login_as(client, sessions, settings, world.users["member"])
    assert (await client.get(base)).status_code == 403
    assert (await client.get(f"{base}/compte-rendu.csv")).status_code == 403

    other = await make_world(sessions, name="Association Voisine")
    await login_as(client, sessions, settings, other.users["accountant"])
    for path in (base, f"{base}/compte-rendu.csv", f"{base}/compte-rendu.pdf"):
        assert (await client.get(path)).status_code == 404, path
    assert REFERENCE not in (await client.get("/admin/reports/grants")).text


async def test_staff_set_the_budget_on_the_page_and_a_bad_one_changes_nothing(client, sessions, settings, world):
    grant = await _books(sessions, world)
    base = f"/admin/reports/grants/{grant.id}"
    await login_as(client, sessions, settings, world.users["staff"])
    token = await csrf(client, base)
    response = await client.post(base, data={"csrf_token": token, "budget": "categorie;libelle;montant\n60;Achats;2 000,00\n"})
    assert response.status_code in (302, 303)
    async with sessions() as session:
        lines = (await session.scalars(select(GrantBudgetLine).where(GrantBudgetLine.grant_id == grant.id))).all()
    assert [(line.category, line.label, line.amount) for line in lines] == [("60", "Achats", 200000)]
    response = await client.post(base, data={"csrf_token": token, "budget": "categorie;libelle;montant\n60;A;10\n99;B;5\n"},
                                 follow_redirects=True)
    assert "catégorie inconnue" in response.text and "ligne 3" in response.text
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(GrantBudgetLine)) == 1


async def test_command_line_sets_the_budget_and_writes_the_report(settings, sessions, world, tmp_path):
    await _books(sessions, world)
    budget = tmp_path / "budget.csv"
    budget.write_text("categorie,libelle,montant\n60,Fournitures,1500\n74,Ville de Clermont,10000\n", encoding="utf-8")
    result = await cli(settings, "ledger", "grant-budget", REFERENCE, "--file", str(budget))
    assert result.exit_code == 0, result.stderr
    assert "1500,00" in result.stdout and "6000,00" not in result.stdout  # replaced, not added
    result = await cli(settings, "ledger", "grant-report", REFERENCE)
    assert result.exit_code == 0, result.stderr
    assert "1500,00" in result.stdout and "1234,56" in result.stdout and "-17,7" in result.stdout
    result = await cli(settings, "ledger", "grant-report", REFERENCE, "--format", "csv")
    assert result.exit_code == 0 and "charges;60;Achats;;1500,00;1234,56;-265,44;-17,7;EUR" in result.stdout
    target = tmp_path / "cr.pdf"
    result = await cli(settings, "ledger", "grant-report", REFERENCE, "--year", "2026", "--format", "pdf", "--output", str(target))
    assert result.exit_code == 0, result.stderr
    assert target.read_bytes().startswith(b"%PDF")


@pytest.mark.parametrize(("args", "message"), [
    (["grant-report", "NOPE"], "subvention inconnue : NOPE"),
    (["grant-report", REFERENCE, "--format", "pdf"], "--format pdf demande --output"),
    (["grant-report", REFERENCE, "--year", "1800"], "année invalide : 1800"),
    (["grant-report", REFERENCE, "--format", "csv", "--output", "/nulle/part/x.csv"], "répertoire introuvable"),
    (["grant-budget", REFERENCE, "--file", "/nulle/part.csv"], "no such file"),
])
async def test_bad_command_lines_are_refused_in_one_line(settings, sessions, world, args, message):
    await _books(sessions, world)
    result = await cli(settings, "ledger", *args)
    assert result.exit_code != 0 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


async def test_a_bad_budget_file_names_its_line_and_changes_nothing(settings, sessions, world, tmp_path):
    await _books(sessions, world)
    for content, message in (("categorie;libelle;montant\n60;A;10\n61;B;dix\n", "ligne 3, colonne montant : montant invalide : dix"),
                             ("categorie;libelle;montant\n60;A;10\n60;A;5\n", "ligne 3, colonne categorie : même ligne que la ligne 2"),
                             ("compte;montant\n60;10\n", "en-tête attendu"),
                             ("categorie;libelle;montant\n", "aucune ligne")):
        budget = tmp_path / "budget.csv"
        budget.write_text(content, encoding="utf-8")
        result = await cli(settings, "ledger", "grant-budget", REFERENCE, "--file", str(budget))
        assert result.exit_code == 1 and message in result.stderr and "rien n'a été modifié" in result.stderr, result.stderr
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(GrantBudgetLine)) == 8


async def test_the_demo_shows_a_balanced_budget_against_the_sites_books(sessions):
    from funding.demo.seed import seed

    async with transaction(sessions) as session:
        org = await seed(session)
    async with sessions() as session:
        grant = await gr.grant_by_reference(session, "COURPIERE-2026-12", org.id)
        report = await gr.grant_report(session, grant)
    assert report.total("charge").budget == report.total("produit").budget == 1140000
    assert report.basis == "site"  # the demo tags no expense with the grant
    assert ("74", "Commune de Courpière", 500000, 500000) in [(r.category, r.detail, r.budget, r.actual) for r in report.rows]
