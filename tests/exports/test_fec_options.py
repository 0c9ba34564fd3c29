"""The FEC's options: ISO 8859-15 with transliteration said in its description (command line,
page, monthly email), and monthly files named after the fiscal year's closing and numbered as
the year's file, on both databases."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import settings as examples
from hypothesis import strategies as st

from funding.db import transaction
from funding.exports import journal, service
from funding.ledger.service import EntryDraft, Line, close_month, post
from tests.support import fec_checker
from tests.support.cli import funding as cli
from tests.support.exports import monthly_fec_name
from tests.support.smtp import attachments, running_inbox
from tests.support.web import login_as

TODAY = dt.date.today()


@pytest.fixture
def smtp():
    yield from running_inbox()


LAST_YEAR = TODAY.year - 1
LABEL = "Cotisation — Łódź’s café 🎉 œuvre ½"
LATIN9_LABEL = "Cotisation - Lódz's café ? œuvre 1/2"


def test_characters_outside_latin9_are_transliterated_and_those_inside_kept():
    assert journal.latin9_text(LABEL) == LATIN9_LABEL
    assert journal.latin9_text("Œuvre ŠŽ € «guillemets» ä") == "Œuvre ŠŽ € «guillemets» ä"  # all in ISO 8859-15
    assert journal.latin9_text("Ştefan ăţ “x” … ﬁn 北") == 'Stefan at "x" ... fin ?'
    assert journal.latin9_text("1\u202f234,56\u00a0€") == "1\u00a0234,56\u00a0€"
    for text in ("\u2028", "\t", "😀\u0301"):  # nothing becomes a break; a lone accent is dropped
        assert "\t" not in journal.latin9_text(text.replace("\t", "x")) and "\n" not in journal.latin9_text(text)


@examples(max_examples=300, deadline=None)
@given(st.text())
def test_transliteration_always_gives_latin9_and_never_a_new_break(text):
    out = journal.latin9_text(text)
    out.encode("iso-8859-15")
    assert set(out) & set(journal.BREAKS) <= set(text)
    if all(journal._encodable(c) for c in text):
        assert out == text


async def _post(sessions, world, day: dt.date, label: str, journal_code: str = "BQ", amount: int = 10000) -> None:
    async with transaction(sessions) as session:
        await post(session, [EntryDraft(
            org_id=world.org_id, site_id=world.site_id, journal=journal_code, entry_date=day, label=label,
            piece_ref=f"P-{day:%m%d}-{amount}", funding_source="private", lines=[Line("512", amount), Line("7542", -amount)],
        )])


async def test_latin9_fec_from_the_command_line_decodes_as_iso_8859_15_and_says_what_it_transliterated(
        settings, sessions, world, tmp_path):
    day = TODAY.replace(day=1)
    await _post(sessions, world, day, LABEL)
    await _post(sessions, world, day, "Adhésion œuvre", amount=2000)
    span = ["--from", day.isoformat(), "--to", day.isoformat()]
    result = await cli(settings, "export", "--format", "fec", *span, "--encoding", "iso-8859-15", "--output", str(tmp_path))
    assert result.exit_code == 0, result.stderr
    name = f"{world.siren}FEC{day:%Y%m%d}.txt"
    data = (tmp_path / name).read_bytes()
    assert fec_checker.check_fec(name, data, encoding="iso-8859-15") == []
    text = data.decode("iso-8859-15")
    assert text.count(f"\t{LATIN9_LABEL}\t") == 2 and "Adhésion œuvre" in text
    assert "Adhésion œuvre".encode("iso-8859-15") in data and "é".encode() not in data  # one byte per letter
    description = (tmp_path / name.replace(".txt", "-description.txt")).read_text(encoding="utf-8")
    # The label stands on both lines of its entry: two zones.
    assert "ISO 8859-15" in description and "2 zone(s) de texte translittérée(s)" in description
    # The UTF-8 file of the same period is untouched, and its description says UTF-8.
    result = await cli(settings, "export", "--format", "fec", *span, "--output", str(tmp_path / "utf8"))
    assert result.exit_code == 0, result.stderr
    utf8 = (tmp_path / "utf8" / name).read_bytes()
    assert LABEL in utf8.decode("utf-8")
    assert utf8.decode("utf-8").replace(LABEL, LATIN9_LABEL).encode("iso-8859-15") == data
    assert "UTF-8" in (tmp_path / "utf8" / name.replace(".txt", "-description.txt")).read_text(encoding="utf-8")
    log = await cli(settings, "exports", "log")
    assert "fec-latin9" in log.stdout


async def test_a_label_of_zero_width_characters_never_leaves_a_mandatory_zone_blank(engine, sessions, world):
    day = TODAY.replace(day=1)
    await _post(sessions, world, day, "\u200b\u200d")
    async with sessions() as session:
        scope = await service.resolve_scope(session, siren=world.siren, site=None, start=day, end=day)
    async with engine.connect() as conn:
        digest = await service.digest_of(conn, scope, "fec-latin9")
        data = await service.build(conn, scope, "fec-latin9")
    assert fec_checker.check_fec(journal.fec_filename(scope), data, encoding="iso-8859-15") == []
    assert [line.split("\t")[10] for line in data.decode("iso-8859-15").splitlines()[1:]] == ["?", "?"]
    assert digest.notes.zones == 2


async def test_bad_encoding_options_are_refused_clearly(settings, sessions, world, tmp_path):
    span = ["--from", "2026-01-01", "--to", "2026-01-31", "--output", str(tmp_path / "x")]
    for args, message in ((["--format", "fec", "--encoding", "ebcdic"], "codage inconnu : ebcdic"),
                          (["--format", "csv", "--encoding", "iso-8859-15"], "ne vaut que pour le FEC")):
        result = await cli(settings, "export", *args, *span)
        assert result.exit_code == 1 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


async def test_the_page_offers_the_latin9_fec_and_its_description(client, sessions, settings, world):
    day = TODAY.replace(day=1)
    await _post(sessions, world, day, LABEL)
    await login_as(client, sessions, settings, world.users["accountant"])
    page = await client.get("/admin/exports")
    assert 'value="fec-latin9"' in page.text and "fec-latin9-description" in page.text
    query = f"org={world.siren}&from={day.isoformat()}&to={day.isoformat()}"
    response = await client.get(f"/admin/exports/download?format=fec-latin9&{query}")
    assert response.status_code == 200 and response.headers["content-type"] == "text/plain; charset=iso-8859-15"
    assert LATIN9_LABEL in response.content.decode("iso-8859-15")
    description = await client.get(f"/admin/exports/download?format=fec-latin9-description&{query}")
    assert description.status_code == 200 and "2 zone(s) de texte translittérée(s)" in description.text


async def test_a_recipient_gets_the_latin9_fec_monthly_with_its_description(settings, sessions, world, smtp):
    month_end = TODAY.replace(day=1) - dt.timedelta(days=1)
    await _post(sessions, world, month_end, LABEL)
    async with transaction(sessions) as session:
        await close_month(session, world.org_id, f"{month_end:%Y-%m}")
    result = await cli(settings, "exports", "recipients", "--add", "cabinet@example.org", "--formats", "fec-latin9,csv")
    assert result.exit_code == 0, result.stderr
    result = await cli(settings, "exports", "send", "--period", f"{month_end:%Y-%m}", SMTP_URL=smtp.url)
    assert result.exit_code == 0, result.stderr
    files = {name: data for m in smtp.messages for name, data in attachments(m).items()}
    name = monthly_fec_name(world.siren, month_end)
    assert fec_checker.check_fec(name, files[name], encoding="iso-8859-15") == []
    assert LATIN9_LABEL in files[name].decode("iso-8859-15")
    description = files[name.replace(".txt", "-description.txt")].decode("utf-8")
    assert "ISO 8859-15" in description and "2 zone(s) de texte translittérée(s)" in description
    assert f"Fichier mensuel     : écritures du mois {month_end:%m/%Y}" in description


async def test_a_monthly_fec_is_named_after_the_year_end_and_numbered_as_the_years_file(engine, sessions, world, tmp_path):
    # Validation order interleaves the months: the year's file numbers the opening entry 1,
    # then April's, March's, April's again; April's file carries 2 and 4.
    await _post(sessions, world, dt.date(LAST_YEAR, 4, 3), "Avril 1")
    await _post(sessions, world, dt.date(LAST_YEAR, 3, 20), "Mars")
    await _post(sessions, world, dt.date(LAST_YEAR, 4, 28), "Avril 2")
    await _post(sessions, world, dt.date(LAST_YEAR, 1, 1), "À-nouveaux", journal_code="AN")
    await _post(sessions, world, dt.date(LAST_YEAR, 5, 2), "Mai")
    async with sessions() as session:
        april = await service.resolve_scope(session, siren=world.siren, site=None, start=dt.date(LAST_YEAR, 4, 1),
                                            end=dt.date(LAST_YEAR, 4, 30))
        year = await service.resolve_scope(session, siren=world.siren, site=None, start=dt.date(LAST_YEAR, 1, 1),
                                           end=dt.date(LAST_YEAR, 12, 31))
        odd = await service.resolve_scope(session, siren=world.siren, site=None, start=dt.date(LAST_YEAR, 4, 1),
                                          end=dt.date(LAST_YEAR, 4, 29))
    assert april.monthly and not year.monthly and not odd.monthly
    assert journal.fec_filename(april) == f"{world.siren}FEC{LAST_YEAR}1231_{LAST_YEAR}04.txt"
    assert journal.fec_filename(year) == f"{world.siren}FEC{LAST_YEAR}1231.txt"
    assert journal.fec_filename(odd) == f"{world.siren}FEC{LAST_YEAR}0429.txt"
    async with engine.connect() as conn:
        month_file = await service.build(conn, april, "fec")
        year_file = await service.build(conn, year, "fec")
    assert fec_checker.check_fec(journal.fec_filename(april), month_file) == []
    assert fec_checker.check_fec(journal.fec_filename(year), year_file) == []
    month_lines = month_file.decode().splitlines()[1:]
    assert [line.split("\t")[2] for line in month_lines] == ["2", "2", "4", "4"]
    # The very lines the year's file holds for April: same numbers, same zones.
    assert month_lines == [line for line in year_file.decode().splitlines()[1:] if line.split("\t")[3].startswith(f"{LAST_YEAR}04")]
    description = service.fec_description(april, service.Digest())
    assert "fichiers mensuels portent les numéros que portera le fichier" in description.decode()
    assert f"{world.siren}FEC{LAST_YEAR}1231.txt" in description.decode()


async def test_a_monthly_fec_follows_a_fiscal_year_that_is_not_the_calendar_year(engine, sessions, world):
    from sqlalchemy import update

    from funding.orgs.models import Organisation

    async with transaction(sessions) as session:
        await session.execute(update(Organisation).where(Organisation.id == world.org_id).values(fiscal_year_start_month=9))
    async with sessions() as session:
        scope = await service.resolve_scope(session, siren=world.siren, site=None, start=dt.date(LAST_YEAR, 10, 1),
                                            end=dt.date(LAST_YEAR, 10, 31))
    assert journal.fec_filename(scope) == f"{world.siren}FEC{LAST_YEAR + 1}0831_{LAST_YEAR}10.txt"
