"""Accountants' pages and downloads, the funding-mix report, signed links, transparency
and open data, through HTTP on both databases."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io

from sqlalchemy import select

from funding.db import transaction
from funding.exports import service
from funding.exports.models import ExportLog
from funding.ledger.service import EntryDraft, Line, post
from funding.security import sign
from tests.support import fec_checker
from tests.support.exports import fec_name, seed_money
from tests.support.web import login_as

TODAY = dt.date.today()


async def test_accountant_downloads_each_format_and_every_download_is_logged(client, sessions, settings, world):
    await seed_money(sessions, world)
    await login_as(client, sessions, settings, world.users["accountant"])
    page = await client.get("/admin/exports")
    assert page.status_code == 200 and "Journal des exports" in page.text
    query = f"org={world.siren}&from={TODAY.replace(day=1).isoformat()}&to={TODAY.isoformat()}"
    response = await client.get(f"/admin/exports/download?format=fec&{query}")
    assert response.status_code == 200
    name = fec_name(world.siren, TODAY.replace(day=1), TODAY)
    assert f'filename="{name}"' in response.headers["content-disposition"]
    assert fec_checker.check_fec(name, response.content) == []
    hashes = {"fec": hashlib.sha256(response.content).hexdigest()}
    for fmt in ("csv", "beancount", "hledger", "trial-balance", "general-ledger"):
        response = await client.get(f"/admin/exports/download?format={fmt}&{query}")
        assert response.status_code == 200, fmt
        hashes[fmt] = hashlib.sha256(response.content).hexdigest()
    description = await client.get(f"/admin/exports/download?format=fec-description&{query}")
    assert "UTF-8" in description.text and hashes["fec"] in description.text
    async with sessions() as session:
        logs = (await session.scalars(select(ExportLog).order_by(ExportLog.id))).all()
    assert {log.format: log.sha256 for log in logs} == hashes
    assert all(log.taken_by == f"accountant-{world.siren[-4:]}@example.org" and log.channel == "web" for log in logs)
    page = await client.get("/admin/exports")
    assert hashes["fec"] in page.text and hashes["hledger"] in page.text

    for path in ("/admin/exports/trial-balance", "/admin/exports/general-ledger"):
        page = await client.get(f"{path}?{query}")
        assert page.status_code == 200 and "3\u202f600,00\u00a0€" in page.text and "/static/exports.css" in page.text


async def test_bad_requests_get_a_clear_message_and_staff_and_members_cannot_export(client, sessions, settings, world):
    await login_as(client, sessions, settings, world.users["accountant"])
    response = await client.get(f"/admin/exports/download?format=fec&org={world.siren}&from=2026-13-01&to=2026-01-31")
    assert response.status_code == 400 and "invalide" in response.text
    response = await client.get(f"/admin/exports/download?format=pdf&org={world.siren}&from=2026-01-01&to=2026-01-31")
    assert response.status_code == 400 and "Format inconnu" in response.text
    response = await client.get(f"/admin/exports/download?format=fec&org={world.siren}&from=2026-02-01&to=2026-01-31")
    assert response.status_code == 400 and "inversée" in response.text
    for role in ("staff", "member"):
        client.cookies.clear()
        await login_as(client, sessions, settings, world.users[role])
        assert (await client.get("/admin/exports")).status_code == 403
        assert (await client.get(f"/admin/exports/download?format=csv&org={world.siren}")).status_code == 403
    client.cookies.clear()
    assert (await client.get("/admin/exports")).status_code == 303  # to the login page


async def test_funding_mix_report_shares_chart_csv_and_grants(client, sessions, settings, world):
    await seed_money(sessions, world)
    await login_as(client, sessions, settings, world.users["accountant"])
    page = await client.get("/admin/reports/funding-mix")
    assert page.status_code == 200
    text = page.text
    # 30 000 public + 5 000 private + 70 crowdfunding + 3 600 self = 38 670 €
    assert 'id="mix-total">38\u202f670,00\u00a0€' in text
    assert "<svg id=\"mix-bar\"" in text and 'data-source="public" data-amount="3000000"' in text
    assert 'width="465"' in text  # 30 000 / 38 670 of 600 units, floored
    assert "Contributions en ligne (financement participatif) comptabilisées : 2." in text
    assert "AURA-1" in text and "RELEVE-1" in text and "20\u202f000,00\u00a0€" in text  # remaining on the grant

    report_csv = await client.get("/admin/reports/funding-mix.csv")
    rows = list(csv.DictReader(io.StringIO(report_csv.content.decode("utf-8-sig")), delimiter=";"))
    by_source = {r["origine"]: (r["montant"], r["part"]) for r in rows if r["section"] == "origine"}
    assert by_source == {"public": ("30000,00", "77,6"), "private": ("5000,00", "12,9"), "self": ("3600,00", "9,3"),
                         "crowdfunding": ("70,00", "0,2")}
    site_page = await client.get(f"/admin/reports/funding-mix?site=courpiere-{world.siren[-4:]}")
    assert 'id="mix-total">70,00\u00a0€' in site_page.text and "AURA-1" not in site_page.text
    empty = await client.get("/admin/reports/funding-mix?from=2001-01-01&to=2001-12-31")
    assert empty.status_code == 200 and "Aucun produit comptabilisé" in empty.text


async def test_transparency_pages_and_open_data_show_counts_never_people(client, sessions, world):
    await seed_money(sessions, world)
    page = await client.get("/transparence")
    assert page.status_code == 200
    assert "2 contributions en ligne" in page.text and "Région Auvergne-Rhône-Alpes" in page.text
    assert "ch_1" not in page.text and "RELEVE-1" not in page.text and "Fondation X" not in page.text
    site = await client.get(f"/transparence/{world.site_slug}")
    assert site.status_code == 200 and "0 contributions en ligne" in site.text
    assert (await client.get("/transparence/nowhere")).status_code == 404

    grants = await client.get("/open-data/subventions.csv")
    rows = list(csv.reader(io.StringIO(grants.text)))
    assert rows[0] == ["nomAttribuant", "idAttribuant", "dateConvention", "referenceDecision", "nomBeneficiaire",
                       "idBeneficiaire", "rnaBeneficiaire", "objet", "montant", "nature", "conditionsVersement",
                       "datesPeriodeVersement", "idRAE", "notificationUE", "pourcentageSubvention", "dispositifAide"]
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["idAttribuant"] == "20005376700014" and row["montant"] == "30000.00"
    assert row["dateConvention"] == TODAY.replace(day=1).isoformat() == row["datesPeriodeVersement"]
    assert row["nature"] == "aide en numéraire" and row["notificationUE"] == "non"

    mix = (await client.get("/open-data/funding-mix.json")).json()
    network = [p for p in mix["periods"] if p["site"] is None]
    assert network[-1]["period"] == f"{TODAY:%Y-%m}" and network[-1]["total_minor"] == 3867000
    assert network[-1]["sources"]["public"] == {"amount": "30000.00", "amount_minor": 3000000, "share": "77.6"}
    csv_rows = list(csv.DictReader(io.StringIO((await client.get("/open-data/funding-mix.csv")).text)))
    assert {"periode": f"{TODAY:%Y-%m}", "lieu": "reseau", "origine": "public", "montant": "30000.00", "devise": "EUR",
            "part": "77.6"} in csv_rows


async def test_signed_links_serve_the_recorded_file_and_expire(client, sessions, settings, world, monkeypatch):
    from funding.ledger.service import close_month

    last_month_end = TODAY.replace(day=1) - dt.timedelta(days=1)
    async with transaction(sessions) as session:
        await post(session, [EntryDraft(org_id=world.org_id, site_id=world.site_id, journal="BQ", entry_date=last_month_end,
                                        label="Mécénat", piece_ref="VIR-9", funding_source="private",
                                        lines=[Line("512", 100000), Line("7542", -100000)])])
        await close_month(session, world.org_id, f"{last_month_end:%Y-%m}")
        await service.add_recipient(session, world.org_id, "sophie@example.org", "Sophie Roux", "csv")
    async with sessions() as session:
        scope = await service.resolve_scope(session, siren=world.siren, site=None, start=last_month_end.replace(day=1),
                                            end=last_month_end)
        digest = await service.digest_of(await session.connection(), scope, "csv")
    ref = {"org": world.siren, "period": f"{last_month_end:%Y-%m}", "format": "csv", "sha256": digest.hexdigest,
           "to": "sophie@example.org"}
    response = await client.get(f"/exports/lien/{sign(settings.secret_key, service.LINK_PURPOSE, ref)}")
    assert response.status_code == 200 and hashlib.sha256(response.content).hexdigest() == digest.hexdigest
    async with sessions() as session:
        log = await session.scalar(select(ExportLog))
    assert (log.taken_by, log.channel, log.sha256, log.closed) == ("sophie@example.org", "link", digest.hexdigest, True)

    tampered = sign(settings.secret_key, service.LINK_PURPOSE, {**ref, "sha256": "0" * 64})
    assert (await client.get(f"/exports/lien/{tampered}")).status_code == 409
    forged = sign("another-secret-key-0123456789", service.LINK_PURPOSE, ref)
    assert "invalide" in (await client.get(f"/exports/lien/{forged}")).text
    monkeypatch.setattr(service, "LINK_MAX_AGE", -1)
    expired = await client.get(f"/exports/lien/{sign(settings.secret_key, service.LINK_PURPOSE, ref)}")
    assert expired.status_code == 400 and "expiré" in expired.text


async def test_a_link_dies_with_its_recipient(client, sessions, settings, world):
    """Observed: an export link kept working after its recipient was removed."""
    from sqlalchemy import update

    from funding.exports.models import ExportRecipient
    from funding.ledger.service import close_month

    last_month_end = TODAY.replace(day=1) - dt.timedelta(days=1)
    async with transaction(sessions) as session:
        await post(session, [EntryDraft(org_id=world.org_id, site_id=world.site_id, journal="BQ", entry_date=last_month_end,
                                        label="Mécénat", piece_ref="VIR-9", funding_source="private",
                                        lines=[Line("512", 100000), Line("7542", -100000)])])
        await close_month(session, world.org_id, f"{last_month_end:%Y-%m}")
        await service.add_recipient(session, world.org_id, "sophie@example.org", "Sophie Roux", "csv")
    async with sessions() as session:
        scope = await service.resolve_scope(session, siren=world.siren, site=None, start=last_month_end.replace(day=1),
                                            end=last_month_end)
        digest = await service.digest_of(await session.connection(), scope, "csv")
    ref = {"org": world.siren, "period": f"{last_month_end:%Y-%m}", "format": "csv", "sha256": digest.hexdigest,
           "to": "sophie@example.org"}
    link = f"/exports/lien/{sign(settings.secret_key, service.LINK_PURPOSE, {**ref, 'adhoc': False})}"
    assert (await client.get(link)).status_code == 200
    async with transaction(sessions) as session:
        await session.execute(update(ExportRecipient).where(ExportRecipient.email == "sophie@example.org").values(active=False))
    gone = await client.get(link)
    assert gone.status_code == 400 and "ne reçoit plus les exports" in gone.text
    stranger = f"/exports/lien/{sign(settings.secret_key, service.LINK_PURPOSE, {**ref, 'to': 'eve@example.org'})}"
    assert (await client.get(stranger)).status_code == 400
    one_off = f"/exports/lien/{sign(settings.secret_key, service.LINK_PURPOSE, {**ref, 'to': 'eve@example.org', 'adhoc': True})}"
    assert (await client.get(one_off)).status_code == 200  # sent --to an address: lives its 30 days
