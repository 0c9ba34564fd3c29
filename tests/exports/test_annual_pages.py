"""The annual accounts delivered: the page (French, then English), the CSV (numbers as numbers),
the PDF (its text carries the totals), the command line; who may see them and whose."""

from __future__ import annotations

import csv
import io
import re

from pypdf import PdfReader

from tests.support.annual import seed_hand_books
from tests.support.cli import funding
from tests.support.web import login_as, text_of
from tests.support.world import make_world


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


async def test_accountant_reads_the_page_and_downloads_csv_and_pdf(client, sessions, settings, world):
    await seed_hand_books(sessions, world)
    await login_as(client, sessions, settings, world.users["accountant"])
    page = await client.get(f"/admin/reports/annual-accounts?org={world.siren}&year=2025")
    assert page.status_code == 200
    text = _flat(text_of(page.text))
    for shown in ("Compte de résultat", "Excédent ou déficit 1 685,00 € 3 600,00 €", "Total de l'actif 6 585,00 € 6 500,00 €",
                  "Total du passif 6 585,00 € 6 500,00 €", "Report à nouveau 4 300,00 € 700,00 €",
                  "Personnel bénévole 1 188,00 €", "Bénévolat 1 188,00 €", "Fonds dédiés à la fin de l'exercice 400,00 € 1 000,00 €",
                  "Recettes propres 2 100,00 € 5 000,00 €"):
        assert shown in text, shown
    english = _flat(text_of((await client.get(f"/admin/reports/annual-accounts?org={world.siren}&year=2025&lang=en")).text))
    assert "Income statement" in english and "Total assets" in english and "Surplus or deficit" in english

    response = await client.get(f"/admin/reports/annual-accounts.csv?org={world.siren}&year=2025")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert f'comptes-annuels-{world.siren}-2025.csv' in response.headers["content-disposition"]
    rows = {(r["etat"], r["rubrique"]): r for r in csv.DictReader(io.StringIO(response.content.decode("utf-8-sig")), delimiter=";")}
    assert rows[("compte_de_resultat", "excedent")]["exercice_n"] == "1685,00"
    assert rows[("compte_de_resultat", "excedent")]["exercice_n_1"] == "3600,00"
    assert rows[("bilan_actif", "total_actif")]["exercice_n"] == rows[("bilan_passif", "total_passif")]["exercice_n"] == "6585,00"
    assert rows[("contributions_en_nature", "benevolat")]["exercice_n"] == "1188,00"

    response = await client.get(f"/admin/reports/annual-accounts.pdf?org={world.siren}&year=2025")
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    pdf = _flat(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(response.content)).pages))
    for shown in ("Comptes annuels — exercice 2025", f"SIREN {world.siren}", "Excédent ou déficit 1 685,00 € 3 600,00 €",
                  "Total de l'actif 6 585,00 € 6 500,00 €", "Total du passif 6 585,00 € 6 500,00 €",
                  "Personnel bénévole 1 188,00 €", "Utilisations (789) 600,00 €", "Recettes propres 2 100,00 € 5 000,00 €"):
        assert shown in pdf, shown

    site = await client.get(f"/admin/reports/annual-accounts?site=courpiere-{world.siren[-4:]}&year=2025&lang=fr")
    assert site.status_code == 200 and "Excédent ou déficit 1 500,00 €" in _flat(text_of(site.text))


async def test_bad_year_is_a_clear_400_and_staff_and_members_are_refused(client, sessions, settings, world):
    await login_as(client, sessions, settings, world.users["accountant"])
    bad = await client.get(f"/admin/reports/annual-accounts?org={world.siren}&year=l'an dernier")
    assert bad.status_code == 400 and "exercice invalide" in bad.text and "Traceback" not in bad.text
    for role in ("member", "staff"):
        client.cookies.clear()
        await login_as(client, sessions, settings, world.users[role])
        for suffix in ("", ".csv", ".pdf"):
            response = await client.get(f"/admin/reports/annual-accounts{suffix}?org={world.siren}&year=2025")
            assert response.status_code == 403, (role, suffix)


async def test_another_organisation_s_accounts_are_not_there(client, sessions, settings, world):
    await seed_hand_books(sessions, world)
    other = await make_world(sessions, name="Association Voisine")
    await login_as(client, sessions, settings, other.users["accountant"])
    for suffix in ("", ".csv", ".pdf"):
        response = await client.get(f"/admin/reports/annual-accounts{suffix}?org={world.siren}&year=2025")
        assert response.status_code == 404, suffix
        response = await client.get(f"/admin/reports/annual-accounts{suffix}?site={world.site_slug}&year=2025")
        assert response.status_code == 404, suffix
    own = await client.get("/admin/reports/annual-accounts?year=2025")
    assert own.status_code == 200 and other.siren in own.text and world.siren not in own.text
    assert "1 685,00" not in own.text


async def test_command_line_text_csv_and_pdf(sessions, settings, world, tmp_path):
    await seed_hand_books(sessions, world)
    result = await funding(settings, "ledger", "annual-accounts", "2025", "--org", world.siren)
    assert result.exit_code == 0, result.output
    assert re.search(r"Excédent ou déficit\s+1685,00\s+3600,00", result.output)
    assert re.search(r"Total de l'actif\s+6585,00\s+6500,00", result.output)
    assert re.search(r"Total du passif\s+6585,00\s+6500,00", result.output)
    target = tmp_path / "comptes.pdf"
    result = await funding(settings, "ledger", "annual-accounts", "2025", "--org", world.siren, "--format", "pdf",
                           "--output", str(target))
    assert result.exit_code == 0 and "result 1685,00 EUR" in result.output, result.output
    assert "Total du passif 6 585,00 €" in _flat(" ".join(p.extract_text() for p in PdfReader(str(target)).pages))
    result = await funding(settings, "ledger", "annual-accounts", "2025", "--site", f"courpiere-{world.siren[-4:]}",
                           "--format", "csv")
    assert result.exit_code == 0 and "compte_de_resultat;excedent;total;Excédent ou déficit;1500,00;0,00;EUR" in result.output
    result = await funding(settings, "ledger", "annual-accounts", "25", "--org", world.siren)
    assert result.exit_code == 1 and "exercice invalide" in result.output and "Traceback" not in result.output
    other = await make_world(sessions, name="Association Voisine")
    result = await funding(settings, "--as", f"accountant-{other.siren[-4:]}@example.org", "ledger", "annual-accounts", "2025",
                           "--org", world.siren)
    assert result.exit_code != 0 and "1685" not in result.output
