"""Money outside Stripe: grants, patronage, sponsoring, transfers; one line or a CSV."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from sqlalchemy import func, select

from funding.db import transaction
from funding.ledger.models import Entry, Grant, Posting
from funding.ledger.records import Record, RecordError, parse_csv, record_many

TODAY = dt.date.today().isoformat()


async def _record(sessions, *records):
    async with transaction(sessions) as session:
        return await record_many(session, list(records), created_by="test")


async def _lines(sessions, number):
    async with sessions() as session:
        entry = await session.scalar(select(Entry).where(Entry.number == number))
        postings = (await session.scalars(select(Posting).where(Posting.entry_id == entry.id).order_by(Posting.line_no))).all()
    return entry, [(p.account_number, p.amount) for p in postings]


async def test_grant_notified_then_paid_in_two_instalments(sessions, world):
    notified = Record("grant-notified", TODAY, "30 000,00", site=world.site_slug, funder="Région Auvergne-Rhône-Alpes",
                      funder_siret="20005376700014", reference="AURA-1", object="Fonctionnement")
    (out,) = await _record(sessions, notified)
    entry, lines = await _lines(sessions, out.entry.number)
    assert (entry.journal_code, entry.funding_source, entry.piece_ref) == ("OD", "public", "AURA-1")
    assert lines == [("441", 3_000_000), ("741", -3_000_000)]

    await _record(sessions, Record("grant-paid", TODAY, "15000", reference="AURA-1", piece_ref="RELEVE-1"))
    (paid,) = await _record(sessions, Record("grant-paid", TODAY, "15000,00", reference="AURA-1", piece_ref="RELEVE-2"))
    entry, lines = await _lines(sessions, paid.entry.number)
    assert entry.journal_code == "BQ" and lines == [("512", 1_500_000), ("441", -1_500_000)]
    with pytest.raises(RecordError, match="dépasse ce qui reste"):
        await _record(sessions, Record("grant-paid", TODAY, "0,01", reference="AURA-1", piece_ref="RELEVE-3"))


async def test_recording_the_same_operation_twice_posts_it_once(sessions, world):
    rec = Record("patronage", TODAY, "2500", site=world.site_slug, funder="Fondation X", piece_ref="CONV-1")
    first = await _record(sessions, rec)
    again = await _record(sessions, rec)
    assert first[0].entry.created and not again[0].entry.created
    assert again[0].entry.number == first[0].entry.number


async def test_sponsoring_splits_vat_without_floats(sessions, world):
    (out,) = await _record(sessions, Record("sponsoring", TODAY, "1200,00", site=world.site_slug, funder="Imprimerie",
                                            piece_ref="F-1", vat_rate="20"))
    _, lines = await _lines(sessions, out.entry.number)
    assert lines == [("512", 120000), ("7063", -100000), ("445711", -20000)]
    (out,) = await _record(sessions, Record("sponsoring", TODAY, "100,00", site=world.site_slug, funder="Café",
                                            piece_ref="F-2", vat_rate="5,5"))
    _, lines = await _lines(sessions, out.entry.number)
    assert lines == [("512", 10000), ("7063", -9479), ("445713", -521)]


@pytest.mark.parametrize(
    "record, message",
    [
        (Record("gift", TODAY, "10"), "type d'opération inconnu"),
        (Record("patronage", "31/02/2026", "10", site="x"), "date invalide"),
        (Record("patronage", TODAY, "10,001", site="SITE"), "au plus 2 décimales"),
        (Record("patronage", TODAY, "-5", site="SITE"), "positif"),
        (Record("patronage", TODAY, "abc", site="SITE"), "montant invalide"),
        (Record("patronage", TODAY, "10", site="nowhere", funder="F", piece_ref="P"), "site inconnu"),
        (Record("patronage", TODAY, "10", site="SITE", piece_ref="P"), "nom du mécène manquant"),
        (Record("grant-paid", TODAY, "10", reference="NOPE"), "subvention inconnue"),
        (Record("grant-notified", TODAY, "10", site="SITE", funder="F", reference="R", object="O", funder_siret="123"),
         "SIRET invalide"),
        (Record("transfer", TODAY, "10", site="SITE", debit="512", credit="99", source="self", label="l", piece_ref="p"),
         "numéro de compte invalide"),
        (Record("transfer", TODAY, "10", site="SITE", debit="512", credit="7588", source="self", label="l", piece_ref="p"),
         "compte inconnu"),
        (Record("transfer", TODAY, "10", site="SITE", debit="512", credit="758", source="gift", label="l", piece_ref="p"),
         "origine des fonds invalide"),
        (Record("sponsoring", TODAY, "10", site="SITE", funder="F", piece_ref="p", vat_rate="19"), "taux de TVA"),
        (Record("patronage", "2999-01-01", "10", site="SITE", funder="F", piece_ref="P"), "date future"),
    ],
)
async def test_bad_records_are_refused_with_a_clear_message_and_change_nothing(sessions, world, record, message):
    if record.site == "SITE":
        record = dataclasses.replace(record, site=world.site_slug)
    with pytest.raises(RecordError, match=message):
        await _record(sessions, record)
    async with sessions() as session:
        assert await session.scalar(select(func.count(Entry.id))) == 0
        assert await session.scalar(select(func.count(Grant.id))) == 0


async def test_a_csv_with_one_bad_line_records_nothing(sessions, world):
    data = (
        "kind;site;date;amount;funder;funder_siret;reference;object;piece_ref\n"
        f"grant-notified;{world.site_slug};{TODAY};5000,00;Commune;20005376700014;C-1;Animation;\n"
        f"patronage;{world.site_slug};{TODAY};300;Mécène;;;;M-1\n"
        f"patronage;{world.site_slug};{TODAY};trois cents;Mécène;;;;M-2\n"
    ).encode()
    records = parse_csv(data)
    assert len(records) == 3
    with pytest.raises(RecordError, match="ligne 4, colonne amount : montant invalide"):
        await _record(sessions, *records)
    async with sessions() as session:
        assert await session.scalar(select(func.count(Entry.id))) == 0
        assert await session.scalar(select(func.count(Grant.id))) == 0
    fixed = parse_csv(data.replace(b"trois cents", b"300"))
    outcomes = await _record(sessions, *fixed)
    assert [o.entry.number for o in outcomes] == [1, 2, 3]


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "ligne 1 : le fichier est vide"),
        (b"\xff\xfe\x00", "ligne 1, colonne n°1 : le fichier n'est pas en UTF-8"),
        (b"kind,date,amount,color\npatronage,2026-01-01,1,red\n", "ligne 1, colonne color : colonne inconnue"),
        (b"site,label\nx,y\n", "ligne 1, colonne kind : colonne manquante"),
        (b"kind,date,amount\n", "ligne 2 : aucune ligne après l'en-tête"),
        (b"kind,date,amount\npatronage,2026-01-01,1,extra\n", "ligne 2, colonne n°4 : cellule en trop"),
    ],
)
def test_malformed_csv_files_are_refused(data, message):
    with pytest.raises(RecordError, match=message):
        parse_csv(data)
