"""Contributions in kind: volunteering hours valued (hours × hourly value) and goods lent or given,
recorded by staff from the command line, a CSV or the record page, posted 86x debit / 87x credit;
bad input refused with a clear message and nothing written."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from funding.db import transaction
from funding.ledger.models import Entry, Posting
from funding.ledger.records import Record, RecordError, parse_csv, record_many
from tests.support.cli import funding
from tests.support.web import csrf, login_as

TODAY = dt.date.today().isoformat()


async def _record(sessions, *records):
    async with transaction(sessions) as session:
        return await record_many(session, list(records), created_by="test")


async def _lines(sessions, number):
    async with sessions() as session:
        entry = await session.scalar(select(Entry).where(Entry.number == number))
        postings = (await session.scalars(select(Posting).where(Posting.entry_id == entry.id).order_by(Posting.line_no))).all()
    return entry, [(p.account_number, p.amount) for p in postings]


async def _count(sessions) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count(Entry.id))))


async def test_volunteering_goods_lent_and_given_post_86_against_87(sessions, world):
    (hours,) = await _record(sessions, Record("volunteering", TODAY, "", site=world.site_slug, hours="12,5", hourly_value="11,88",
                                              label="Animation du Repair Café", piece_ref="HEURES-2026-11", funder="Bénévoles"))
    entry, lines = await _lines(sessions, hours.entry.number)
    assert lines == [("864", 14850), ("870", -14850)]  # 12,5 h × 11,88 € = 148,50 €
    assert (entry.journal_code, entry.funding_source, entry.piece_ref) == ("OD", "private", "HEURES-2026-11")
    assert entry.label == "Bénévolat : Animation du Repair Café (Bénévoles)"
    (lent,) = await _record(sessions, Record("goods-lent", TODAY, "450,00", site=world.site_slug, label="Salle des fêtes, 3 jours",
                                             piece_ref="ATTEST-MAIRIE-07", funder="Commune de Courpière"))
    assert (await _lines(sessions, lent.entry.number))[1] == [("861", 45000), ("871", -45000)]
    (given,) = await _record(sessions, Record("goods-given", TODAY, "1 200", site=world.site_slug, label="Deux établis",
                                              piece_ref="ATTEST-DON-3"))
    assert (await _lines(sessions, given.entry.number))[1] == [("860", 120000), ("875", -120000)]
    # The hours stated with the amount: the amount must be their product.
    (again,) = await _record(sessions, Record("volunteering", TODAY, "23,76", site=world.site_slug, hours="2", hourly_value="11,88",
                                              label="Tenue du bar", piece_ref="HEURES-2026-11-B"))
    assert (await _lines(sessions, again.entry.number))[1] == [("864", 2376), ("870", -2376)]
    # Recorded twice, posted once.
    (same,) = await _record(sessions, Record("volunteering", TODAY, "", site=world.site_slug, hours="12,5", hourly_value="11,88",
                                             label="Animation du Repair Café", piece_ref="HEURES-2026-11", funder="Bénévoles"))
    assert not same.entry.created and same.entry.number == hours.entry.number


@pytest.mark.parametrize("fields, message", [
    ({"hours": "", "hourly_value": "11,88"}, "nombre d'heures manquant"),
    ({"hours": "douze", "hourly_value": "11,88"}, "nombre d'heures invalide : douze"),
    ({"hours": "-3", "hourly_value": "11,88"}, "nombre d'heures invalide"),
    ({"hours": "0", "hourly_value": "11,88"}, "nombre d'heures invalide"),
    ({"hours": "NaN", "hourly_value": "11,88"}, "nombre d'heures invalide"),
    ({"hours": "20000", "hourly_value": "11,88"}, "au plus 10000 heures"),
    ({"hours": "1,234", "hourly_value": "11,88"}, "au centième"),
    ({"hours": "3", "hourly_value": ""}, "valeur horaire manquant"),
    ({"hours": "3", "hourly_value": "onze"}, "valeur horaire"),
    ({"hours": "3", "hourly_value": "0"}, "valeur horaire doit être positive"),
    ({"hours": "3", "hourly_value": "11,88", "amount": "40"}, r"heures × valeur horaire \(35,64\)"),
    ({"hours": "3", "hourly_value": "11,88", "label": ""}, "description de la contribution manquant"),
    ({"hours": "3", "hourly_value": "11,88", "piece_ref": ""}, "référence de pièce"),
    ({"hours": "3", "hourly_value": "11,88", "date": "2099-01-01"}, "date future"),
])
async def test_bad_volunteering_is_refused_and_nothing_is_written(sessions, world, fields, message):
    good = Record("patronage", TODAY, "100", site=world.site_slug, funder="Fondation", piece_ref="M-1")
    values = {"kind": "volunteering", "date": TODAY, "amount": "", "site": world.site_slug, "label": "Ateliers",
              "piece_ref": "HEURES-1", **fields}
    with pytest.raises(RecordError, match=message):
        await _record(sessions, good, Record(**values))
    assert await _count(sessions) == 0


async def test_goods_without_a_value_or_a_description_are_refused(sessions, world):
    for record, message in [
        (Record("goods-lent", TODAY, "0", site=world.site_slug, label="Salle", piece_ref="A-1"), "positif"),
        (Record("goods-given", TODAY, "", site=world.site_slug, label="Établi", piece_ref="A-1"), "montant"),
        (Record("goods-given", TODAY, "100", site=world.site_slug, label="", piece_ref="A-1"), "description"),
        (Record("goods-lent", TODAY, "100", site="nulle-part", label="Salle", piece_ref="A-1"), "site inconnu"),
    ]:
        with pytest.raises(RecordError, match=message):
            await _record(sessions, record)
    assert await _count(sessions) == 0


async def test_csv_of_contributions_in_kind_is_checked_whole(sessions, world):
    data = (
        "kind;site;date;hours;hourly_value;amount;label;piece_ref\n"
        f"volunteering;{world.site_slug};{TODAY};10;11,88;;Chantier participatif;HEURES-1\n"
        f"goods-lent;{world.site_slug};{TODAY};;;300;Prêt d'un véhicule;ATTEST-1\n"
        f"volunteering;{world.site_slug};{TODAY};dix;11,88;;Chantier;HEURES-2\n"
    ).encode()
    with pytest.raises(RecordError, match="ligne 4, colonne hours : nombre d'heures invalide"):
        await _record(sessions, *parse_csv(data))
    assert await _count(sessions) == 0
    outcomes = await _record(sessions, *parse_csv(data.replace(b";dix;", b";2,5;")))
    assert [o.entry.number for o in outcomes] == [1, 2, 3]
    assert (await _lines(sessions, 3))[1] == [("864", 2970), ("870", -2970)]


async def test_command_line_and_record_page(client, sessions, settings, world):
    result = await funding(settings, "ledger", "record", "volunteering", "--site", world.site_slug, "--date", TODAY,
                           "--hours", "4", "--hourly-value", "11,88", "--label", "Permanence", "--piece", "HEURES-CLI")
    assert result.exit_code == 0 and "recorded as entry 1" in result.output, result.output
    result = await funding(settings, "ledger", "record", "volunteering", "--site", world.site_slug, "--date", TODAY,
                           "--hours", "quatre", "--hourly-value", "11,88", "--label", "Permanence", "--piece", "HEURES-CLI-2")
    assert result.exit_code == 1 and "nombre d'heures invalide" in result.output and "nothing was recorded" in result.output
    assert await _count(sessions) == 1

    await login_as(client, sessions, settings, world.users["staff"])
    page = await client.get("/admin/ledger/record?lang=fr")
    assert "Bénévolat valorisé" in page.text and 'name="hourly_value"' in page.text
    form = {"csrf_token": await csrf(client, "/admin/ledger/record"), "kind": "volunteering", "site": world.site_slug,
            "date": TODAY, "hours": "3", "hourly_value": "0", "label": "Accueil", "piece_ref": "HEURES-WEB", "currency": "EUR"}
    refused = await client.post("/admin/ledger/record", data=form)
    assert refused.status_code == 400 and "valeur horaire doit être positive" in refused.text
    assert await _count(sessions) == 1
    done = await client.post("/admin/ledger/record", data={**form, "hourly_value": "12"})
    assert done.status_code == 303
    assert (await _lines(sessions, 2))[1] == [("864", 3600), ("870", -3600)]
