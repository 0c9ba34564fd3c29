"""Every CSV import (ledger records, a bar's products, a grant's budget) refuses a broken file
with a non-zero exit or a form error naming ``ligne N, colonne X : raison``, and writes nothing:
every table counts the same rows before and after. They all read through funding.csvin."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from funding.db import transaction
from funding.ledger.records import Record, record_many
from tests.support.cli import funding as cli

TODAY = dt.date.today().isoformat()
TOMORROW = (dt.date.today() + dt.timedelta(days=1)).isoformat()
HEAD = "kind,site,date,amount,funder,piece_ref"


async def _counts(sessions) -> dict[str, int]:
    from funding.models import metadata

    async with sessions() as session:
        return {t.name: int(await session.scalar(select(func.count()).select_from(t))) for t in metadata.sorted_tables}


def record_files(slug: str) -> list[tuple[str, bytes, str]]:
    row = f"patronage,{slug},{TODAY},100,Fondation,M-1"

    def one(cells: dict[str, str], head: str = HEAD) -> str:
        values = dict(zip(HEAD.split(","), row.split(","), strict=True)) | cells
        return head + "\n" + ",".join(values[c] for c in head.split(",")) + "\n"

    transfer = "kind,site,date,amount,label,piece_ref,debit,credit,source"
    return [
        ("wrong delimiter", f"{HEAD.replace(',', '|')}\n{row.replace(',', '|')}\n".encode(), "ligne 1, colonne kind|site"),
        ("semicolon header, comma rows", f"{HEAD.replace(',', ';')}\n{row}\n".encode(), "ligne 2, colonne kind : type"),
        ("missing column", b"kind,site,amount,funder,piece_ref\npatronage,x,1,F,M\n", "ligne 1, colonne date : colonne manquante"),
        ("unknown column", f"{HEAD},color\n{row},red\n".encode(), "ligne 1, colonne color : colonne inconnue"),
        ("extra cell", f"{HEAD}\n{row},extra\n".encode(), "ligne 2, colonne n°7 : cellule en trop"),
        ("unnamed column", f"kind,,date\n{row}\n".encode(), "ligne 1, colonne n°2 : colonne sans nom"),
        ("repeated column", f"{HEAD},amount\n{row},3\n".encode(), "ligne 1, colonne amount : colonne en double"),
        ("BOM twice", ("\ufeff\ufeff" + one({})).encode(), "ligne 1, colonne \ufeffkind : colonne inconnue"),
        ("BOM inside a cell", one({"kind": "\ufeffpatronage"}).encode(), "ligne 2, colonne kind : type d'opération inconnu"),
        ("latin-1 bytes", one({"funder": "Fondation é"}).encode("latin-1"), "ligne 2, colonne funder : le fichier n'est pas en UTF-8"),
        ("empty file", b"", "ligne 1 : le fichier est vide"),
        ("blank lines only", b"\n \n\n", "ligne 1 : le fichier est vide"),
        ("header only", f"{HEAD}\n".encode(), "ligne 2 : aucune ligne après l'en-tête"),
        ("bad amount", one({"amount": "cent"}).encode(), "ligne 2, colonne amount : montant invalide"),
        ("negative amount", one({"amount": "-5"}).encode(), "ligne 2, colonne amount : le montant doit être positif"),
        ("too many decimals", one({"amount": "1.234"}).encode(), "ligne 2, colonne amount : montant invalide : 1.234 (au plus 2"),
        ("exponent amount", one({"amount": "1e309"}).encode(), "ligne 2, colonne amount : montant invalide"),
        ("non-ASCII digits", one({"amount": "١٠٠"}).encode(), "ligne 2, colonne amount : montant invalide"),
        ("amount above the cap", one({"amount": "10000000000.01"}).encode(), "ligne 2, colonne amount : montant trop grand"),
        ("bad date", one({"date": "2026-02-30"}).encode(), "ligne 2, colonne date : date invalide"),
        ("future date", one({"date": TOMORROW}).encode(), "ligne 2, colonne date : date future refusée"),
        ("unknown site", one({"site": "nowhere"}).encode(), "ligne 2, colonne site : site inconnu"),
        ("unknown kind", one({"kind": "gift"}).encode(), "ligne 2, colonne kind : type d'opération inconnu"),
        ("missing piece", one({"piece_ref": ""}).encode(), "ligne 2, colonne piece_ref : référence de pièce manquant"),
        ("malformed account", f"{transfer}\ntransfer,{slug},{TODAY},10,Virement,V-1,9ZZ,512,self\n".encode(),
         "ligne 2, colonne debit : numéro de compte invalide"),
        ("unknown account", f"{transfer}\ntransfer,{slug},{TODAY},10,Virement,V-1,4719,512,self\n".encode(),
         "ligne 2, colonne debit : compte inconnu"),
        ("unknown currency", f"{HEAD},currency\n{row},ABC\n".encode(), "ligne 2, colonne currency : devise inconnue : ABC"),
        ("NUL", one({"funder": "Fond\x00ation"}).encode(), "ligne 2, colonne funder : caractère de contrôle refusé (code 0x00)"),
        ("escape character", one({"funder": "Fond\x1bation"}).encode(), "ligne 2, colonne funder : caractère de contrôle refusé"),
        ("formula", one({"funder": '=HYPERLINK("http://evil.example")'}).encode(), "ligne 2, colonne funder : formule refusée"),
        ("formula with @", one({"funder": "@SUM(A1)"}).encode(), "ligne 2, colonne funder : formule refusée"),
        ("formula with +", one({"funder": "+cmd|' /C calc'!A0"}).encode(), "ligne 2, colonne funder : formule refusée"),
        ("long cell", one({"funder": "x" * 5000}).encode(), "ligne 2, colonne funder : cellule trop longue"),
        ("huge cell", one({"funder": "x" * 200_000}).encode(), "ligne 2, colonne funder : cellule trop longue"),
        ("duplicated row", f"{HEAD}\n{row}\n{row}\n".encode(), "ligne 3, colonne kind : même ligne que la ligne 2"),
        ("unbalanced quote", f'{HEAD}\npatronage,{slug},{TODAY},100,"Fondation,M-1\n'.encode(),
         "ligne 2, colonne funder : guillemet non fermé"),
        ("bad line after good ones", f"{HEAD}\n{row}\n{row.replace('M-1', 'M-2')}\n{row.replace('100', 'x')}\n".encode(),
         "ligne 4, colonne amount : montant invalide"),
        ("line numbers count quoted line breaks",
         f'{HEAD}\npatronage,{slug},{TODAY},100,"Fonda\ntion",M-1\n{row.replace("100", "x")}\n'.encode(),
         "ligne 4, colonne amount : montant invalide"),
    ]


@pytest.mark.parametrize("case", range(38))
async def test_a_broken_records_file_names_line_column_and_reason_and_records_nothing(settings, sessions, world, tmp_path,
                                                                                     case):
    files = record_files(world.site_slug)
    assert len(files) == 38
    name, content, message = files[case]
    path = tmp_path / "records.csv"
    path.write_bytes(content)
    before = await _counts(sessions)
    result = await cli(settings, "ledger", "record", "--file", str(path))
    assert result.exit_code != 0, name
    assert message in result.stderr, (name, result.stderr)
    assert "Traceback" not in result.stderr
    assert await _counts(sessions) == before, name


PRODUCTS = [
    (b"nom;prix;tva\nCaf\xe9;1,50;10\n", "ligne 2, colonne nom : le fichier n'est pas en UTF-8"),
    (b"", "ligne 1 : le fichier est vide"),
    (b"nom;prix;tva\n", "ligne 2 : aucune ligne après l'en-tête"),
    (b"nom|prix|tva\nThe|1|10\n", "ligne 1, colonne nom|prix|tva : colonne inconnue"),
    (b"nom;prix\nThe;1\n", "ligne 1, colonne vat_rate : colonne manquante"),
    (b"nom;prix;tva;couleur\nThe;1;10;rouge\n", "ligne 1, colonne couleur : colonne inconnue"),
    (b"nom;prix;tva\nThe;1;10;x\n", "ligne 2, colonne n°4 : cellule en trop"),
    (b"nom;prix;tva\nThe;-1;10\n", "ligne 2, colonne prix : Prix invalide"),
    (b"nom;prix;tva\nThe;1,234;10\n", "ligne 2, colonne prix : Prix invalide"),
    (b"nom;prix;tva\nThe;99999999999999999999;10\n", "ligne 2, colonne prix : Prix invalide"),
    (b"nom;prix;tva\nThe;1;19,6\n", "ligne 2, colonne tva : Taux de TVA invalide"),
    (b"nom;prix;tva;actif\nThe;1;10;peut-etre\n", "ligne 2, colonne actif"),
    (b"nom;prix;tva\nTh\x00e;1;10\n", "ligne 2, colonne nom : caractère de contrôle refusé (code 0x00)"),
    (b"nom;prix;tva\n=1+1;1;10\n", "ligne 2, colonne nom : formule refusée"),
    (b"nom;prix;tva\n" + b"x" * 3000 + b";1;10\n", "ligne 2, colonne nom : cellule trop longue"),
    (b"nom;prix;tva\nThe;1;10\nthe;2;10\n", "ligne 3, colonne nom : même ligne que la ligne 2"),
    (b'nom;prix;tva\n"The;1;10\n', "ligne 2, colonne nom : guillemet non fermé"),
    (b"nom;prix;tva\n\xef\xbb\xbfThe;1;10\nCafe;x;10\n", "ligne 3, colonne prix : Prix invalide"),
]


async def test_a_broken_products_file_names_line_column_and_reason_and_imports_nothing(settings, sessions, world,
                                                                                      tmp_path):
    from tests.support.bar import make_bar

    await make_bar(sessions, world)
    path = tmp_path / "menu.csv"
    before = await _counts(sessions)
    for content, message in PRODUCTS:
        path.write_bytes(content)
        result = await cli(settings, "bar", "import-products", str(path), "--site", world.site_slug)
        assert result.exit_code != 0 and message in result.stderr, (content[:60], result.stderr)
        assert "Traceback" not in result.stderr
    assert await _counts(sessions) == before


async def test_a_broken_products_upload_is_a_form_error_naming_line_and_column(client, sessions, settings, world):
    from tests.support.bar import make_bar
    from tests.support.web import csrf, login_as

    await make_bar(sessions, world)
    await login_as(client, sessions, settings, world.users["staff"])
    url = f"/bar/{world.site_slug}/produits"
    token = await csrf(client, url)
    before = await _counts(sessions)
    for content, message in PRODUCTS:
        response = await client.post(url, data={"csrf_token": token}, files={"file": ("menu.csv", content, "text/csv")})
        assert response.status_code == 400, (content[:60], response.status_code)
        assert message.replace("'", "&#39;") in response.text or message in response.text, (content[:60], message)
    assert await _counts(sessions) == before


BUDGETS = [
    (b"categorie;libelle;montant\n60;Achats;1\xe9\n", "ligne 2, colonne montant : le fichier n'est pas en UTF-8"),
    (b"", "ligne 1 : le fichier est vide"),
    (b"categorie;libelle;montant\n", "ligne 2 : aucune ligne après l'en-tête"),
    (b"compte;montant\n60;10\n", "ligne 1, colonne compte : colonne inconnue"),
    (b"libelle;montant\nA;10\n", "ligne 1, colonne categorie : colonne manquante"),
    (b"categorie;libelle;montant\n60;A;10;x\n", "ligne 2, colonne n°4 : cellule en trop"),
    (b"categorie;libelle;montant\n99;A;10\n", "ligne 2, colonne categorie : catégorie inconnue"),
    (b"categorie;libelle;montant\n60;A;dix\n", "ligne 2, colonne montant : montant invalide"),
    (b"categorie;libelle;montant\n60;A;-10\n", "ligne 2, colonne montant : le montant doit être positif"),
    (b"categorie;libelle;montant\n60;A;10,001\n", "ligne 2, colonne montant : montant invalide"),
    (b"categorie;libelle;montant\n60;A;10\n61;B;20000000000\n", "ligne 3, colonne montant : montant trop grand"),
    (b"categorie;libelle;montant\n60;A\x00;10\n", "ligne 2, colonne libelle : caractère de contrôle refusé"),
    (b"categorie;libelle;montant\n60;@A;10\n", "ligne 2, colonne libelle : formule refusée"),
    (b"categorie;libelle;montant\n60;A;10\n60;A;5\n", "ligne 3, colonne categorie : même ligne que la ligne 2"),
    (b"categorie;libelle;montant\n60;A;10\n601;A;5\n", "ligne 3, colonne libelle : poste en double"),
    (b'categorie;libelle;montant\n60;"A;10\n', "ligne 2, colonne libelle : guillemet non fermé"),
]


async def test_a_broken_budget_file_names_line_column_and_reason_and_changes_nothing(settings, sessions, world, tmp_path):
    async with transaction(sessions) as session:
        await record_many(session, [Record(kind="grant-notified", site=world.site_slug, date=TODAY, amount="10 000,00",
                                           funder="Ville", funder_siret="21630113500010", reference="CONV-CSV",
                                           object="Ateliers")], created_by="test")
    path = tmp_path / "budget.csv"
    before = await _counts(sessions)
    for content, message in BUDGETS:
        path.write_bytes(content)
        result = await cli(settings, "ledger", "grant-budget", "CONV-CSV", "--file", str(path))
        assert result.exit_code != 0 and message in result.stderr, (content[:60], result.stderr)
        assert "Traceback" not in result.stderr
    assert await _counts(sessions) == before


def test_every_csv_import_goes_through_the_one_reader():
    """Nothing but funding/csvin.py makes a csv reader (the seals' feed is read to verify, never written)."""
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[1] / "funding"
    readers = re.compile(r"csv\.(reader|DictReader|Sniffer)\(")
    found = sorted(str(p.relative_to(root)) for p in root.rglob("*.py") if readers.search(p.read_text(encoding="utf-8")))
    assert found == ["csvin.py", "ledger/seals.py"], found
