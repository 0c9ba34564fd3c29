"""Campaign pages, the backer's signed page, receipts, the open API and the widget, over HTTP."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from funding.campaigns.models import Campaign, Pledge, TaxReceipt
from funding.campaigns.receipts import receipt_token, summary_token
from funding.campaigns.views import pledge_page
from tests.support.campaigns import make_campaign, paid_pledge, pledge, tiers_of
from tests.support.db import counted
from tests.support.web import csrf_of, login_as


async def page_with_backers(sessions, world):
    campaign = await make_campaign(sessions, world, goal=20_000, tiers=[
        {"title": "Porte-clés gravé", "amount": 2500, "kind": "reward", "value": 500, "stock": 3},
        {"title": "Couteau de Thiers", "amount": 8000, "kind": "reward", "value": 4500, "vat": 200, "stock": 1},
    ], match={"cap": 2000, "total": 10_000, "funder": "Thiers Dore et Montagne"})
    keyring, knife = await tiers_of(sessions, campaign.id)
    await paid_pledge(sessions, campaign.id, tier=str(keyring.id), amount="", name="Martine Chabrier",
                      email="martine@example.org", message="Vive le FabLab !")
    await paid_pledge(sessions, campaign.id, tier=str(knife.id), amount="", name="Karim Benali", show_name=False,
                      email="karim@example.org")
    await paid_pledge(sessions, campaign.id, amount="15", name="Élodie Vernet", show_name=True,
                      email="elodie@example.org", message="<b>bravo</b>")
    return campaign


async def test_the_page_shows_crowd_and_match_separately_tiers_left_and_the_wall(client, sessions, world):
    campaign = await page_with_backers(sessions, world)
    page = await client.get(f"/campagnes/{campaign.slug}")
    assert page.status_code == 200
    text = page.text
    # crowd 25 + 80 + 15 = 120 €; match min(25,20) + min(80,20) + 15 = 55 € (total cap 100 €): 175 € of 200 €
    assert "175,00\u00a0€" in text and "sur un objectif de 200,00\u00a0€" in text
    assert "Contributions : 120,00\u00a0€" in text and "Abondement public : 55,00\u00a0€" in text
    assert 'aria-valuenow="87"' in text and 'data-percent="87"' in text
    assert 'class="cf-crowd" style="width: 60%"' in text and 'class="cf-match" style="width: 27%"' in text
    assert '<dd id="backers">3</dd>' in text
    assert "Plus que 2 disponibles." in text and "Épuisée" in text  # keyring 3-1, knife 1-1
    assert re.search(r'value="\d+"\s+disabled', text)  # the sold-out tier cannot be chosen
    assert "Martine Chabrier" in text and "Vive le FabLab !" in text and "Anonyme" in text
    assert "Karim Benali" not in text
    assert "&lt;b&gt;bravo&lt;/b&gt;" in text and "<b>bravo</b>" not in text
    assert "Thiers Dore et Montagne ajoute 1 € pour 1 € donnés" in text
    assert "<strong>beau</strong>" in text  # the description's safe formatting


async def test_a_draft_is_hidden_from_the_public_and_previewed_by_staff(client, sessions, world, settings):
    draft = await make_campaign(sessions, world, slug="brouillon", status="draft")
    assert (await client.get(f"/campagnes/{draft.slug}")).status_code == 404
    assert (await client.get("/api/campaigns/brouillon")).status_code == 404
    assert "brouillon" not in (await client.get("/api/campaigns")).text
    await login_as(client, sessions, settings, world.users["staff"])
    assert (await client.get(f"/campagnes/{draft.slug}")).status_code == 200


async def test_bad_contributions_over_http_get_a_message_and_create_nothing(client, sessions, world):
    campaign = await make_campaign(sessions, world, tiers=[{"amount": 2000, "stock": 1}], max_amount=100_000)
    other = await make_campaign(sessions, world, slug="autre", tiers=[{"amount": 1000}])
    closed = await make_campaign(sessions, world, slug="finie", status="succeeded")
    (tier,) = await tiers_of(sessions, campaign.id)
    (foreign,) = await tiers_of(sessions, other.id)
    await pledge(sessions, campaign.id, tier=str(tier.id), amount="")
    token = csrf_of((await client.get(f"/campagnes/{campaign.slug}")).text)
    base = {"csrf_token": token, "currency": "EUR", "name": "Léa Vidal", "email": "lea@example.org", "tier": "", "amount": "20",
            "street": "3 rue Durolle", "postcode": "63300", "town": "Thiers", "country": "France"}
    for slug, data, message in [
        (campaign.slug, {"amount": "0,40"}, "La contribution minimale est de 1,00"),
        (campaign.slug, {"amount": "1 000,01"}, "Au-delà de 1\u202f000,00"),
        (campaign.slug, {"tier": str(tier.id), "amount": ""}, "épuisée"),
        (campaign.slug, {"tier": str(foreign.id)}, "n&#39;existe pas pour cette campagne"),
        (campaign.slug, {"currency": "USD"}, "EUR uniquement"),
        (campaign.slug, {"email": "lea"}, "e-mail invalide"),
        (closed.slug, {}, "Cette campagne est terminée"),
    ]:
        response = await client.post(f"/campagnes/{slug}/contribuer", data={**base, **data})
        assert response.status_code == 400 and message in response.text, (data, response.status_code)
        assert 'role="alert"' in response.text
        assert slug == closed.slug or 'value="Léa Vidal"' in response.text  # what was typed is kept
    assert (await client.post("/campagnes/brouillon-inconnu/contribuer", data=base)).status_code == 404
    async with sessions() as session:
        assert await session.scalar(select(func.count(Pledge.id))) == 1
    missing_token = await client.post(f"/campagnes/{campaign.slug}/contribuer", data={**base, "csrf_token": "forged"})
    assert missing_token.status_code == 403


async def test_the_signed_link_shows_the_pledge_and_a_tampered_one_is_refused(client, sessions, world):
    campaign = await make_campaign(sessions, world, mode="all_or_nothing")
    made = await pledge(sessions, campaign.id, amount="30")
    ok = await client.get(f"/contributions/{made.access_token}")
    assert ok.status_code == 200 and "30,00" in ok.text and 'data-status="pending"' in ok.text
    assert 'content="noindex"' in ok.text
    tampered = made.access_token[:-2] + ("AA" if not made.access_token.endswith("AA") else "BB")
    for bad in (tampered, "1", made.access_token + "x"):
        response = await client.get(f"/contributions/{bad}")
        assert response.status_code == 400 and "n&#39;est pas valide" in response.text
    token = csrf_of(ok.text)
    refused = await client.post(f"/contributions/{tampered}/annuler", data={"csrf_token": token})
    assert refused.status_code == 400
    async with sessions() as session:
        assert (await session.get(Pledge, made.id)).status == "pending"
    canceled = await client.post(f"/contributions/{made.access_token}/annuler", data={"csrf_token": token})
    assert canceled.status_code == 303
    async with sessions() as session:
        assert (await session.get(Pledge, made.id)).status == "canceled"


async def test_the_tax_receipt_is_printable_with_the_cerfa_fields(client, sessions, world, settings):
    campaign = await make_campaign(sessions, world)
    paid = await paid_pledge(sessions, campaign.id, amount="120,50", name="Jeanne Roux", address="4 place du Pirou, 63300 Thiers")
    async with sessions() as session:
        receipt = await session.scalar(select(TaxReceipt))
    page = await client.get(f"/contributions/{paid.access_token}/recu")
    assert page.status_code == 200
    for field in ("Cerfa n° 11580", f"{receipt.year}-000001", "Association Test", world.siren, "Jeanne Roux",
                  "4 place du Pirou, 63300 Thiers", "120,50", "cent vingt euros et cinquante centimes", "Don manuel",
                  "Numéraire", "Carte bancaire", "Fait à Thiers", "articles 200, 238 bis".lower()):
        assert field.lower() in page.text.lower(), field
    assert "@media print" in (await client.get("/static/campaigns.css")).text
    by_token = await client.get(f"/recus/{receipt_token(settings.secret_key, receipt.id)}")
    assert by_token.status_code == 200 and f"{receipt.year}-000001" in by_token.text
    assert (await client.get(f"/recus/{receipt_token('another-secret-0123456', receipt.id)}")).status_code == 400
    summary = await client.get(f"/recus/annuel/{summary_token(settings.secret_key, world.org_id, paid.email, receipt.year)}")
    assert summary.status_code == 200 and "120,50" in summary.text and "7UF" in summary.text
    assert (await client.get("/recus/annuel/bidon")).status_code == 400


async def test_the_api_answers_every_documented_path_with_the_documented_fields(client, sessions, world):
    campaign = await page_with_backers(sessions, world)
    spec = (await client.get("/api/openapi.json")).json()
    assert spec["openapi"].startswith("3.1")
    schemas = spec["components"]["schemas"]

    def resolve(schema):
        return schemas[schema["$ref"].rsplit("/", 1)[1]] if "$ref" in schema else schema

    def check(value, schema, where):
        schema = resolve(schema)
        for part in schema.get("allOf", []):
            check(value, part, where)
        if "oneOf" in schema:
            assert any(value is None if resolve(s).get("type") == "null" else isinstance(value, dict) for s in schema["oneOf"]), where
            options = [s for s in schema["oneOf"] if resolve(s).get("type") != "null"]
            if value is not None:
                check(value, options[0], where)
            return
        for name in schema.get("required", []):
            assert name in value, f"{where}: missing {name}"
        for name, sub in schema.get("properties", {}).items():
            if name not in value:
                continue
            sub = resolve(sub)
            kinds = sub.get("type")
            kinds = kinds if isinstance(kinds, list) else [kinds] if kinds else []
            python = {"string": str, "integer": int, "boolean": bool, "object": dict, "array": list, "null": type(None)}
            if kinds:
                assert any(isinstance(value[name], python[k]) and not (k == "integer" and isinstance(value[name], bool))
                           for k in kinds), f"{where}.{name}: {value[name]!r} is not {kinds}"
            if "enum" in sub:
                assert value[name] in sub["enum"], f"{where}.{name}"
            if isinstance(value[name], dict) and ("properties" in sub or "$ref" in sub or "oneOf" in sub):
                check(value[name], sub, f"{where}.{name}")
            if isinstance(value[name], list) and "items" in sub:
                for n, item in enumerate(value[name]):
                    check(item, sub["items"], f"{where}.{name}[{n}]")
            if "oneOf" in sub:
                check(value[name], sub, f"{where}.{name}")

    for path, operations in spec["paths"].items():
        url = path.replace("{slug}", campaign.slug)
        response = await client.get(url)
        assert response.status_code == 200, path
        schema = operations["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        check(response.json(), schema, path)
        assert response.headers["access-control-allow-origin"] == "*"
    detail = (await client.get(f"/api/campaigns/{campaign.slug}")).json()
    assert (detail["crowd_amount"], detail["match_amount"], detail["total_amount"], detail["percent"]) == (12_000, 5500, 17_500, 87)
    assert [(t["title"], t["remaining"], t["sold_out"]) for t in detail["tiers"]] == [
        ("Porte-clés gravé", 2, False), ("Couteau de Thiers", 0, True)]
    assert detail["match"]["funder"] == "Thiers Dore et Montagne" and detail["match"]["ratio"] == "1:1"
    missing = await client.get("/api/campaigns/nulle-part")
    assert missing.status_code == 404 and missing.json() == {"error": "campaign not found"}


async def test_the_widget_may_be_framed_by_anyone_and_nothing_else_may(client, sessions, world):
    campaign = await page_with_backers(sessions, world)
    widget = await client.get(f"/widget/campaigns/{campaign.slug}")
    assert widget.status_code == 200
    policy = widget.headers["content-security-policy"]
    assert "frame-ancestors *" in policy and "script-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    assert "x-frame-options" not in widget.headers and "set-cookie" not in widget.headers
    assert 'data-percent="87"' in widget.text and "abondé par Thiers Dore et Montagne" in widget.text
    assert 'target="_blank"' in widget.text
    page = await client.get(f"/campagnes/{campaign.slug}")
    assert page.headers["x-frame-options"] == "DENY" and "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert (await client.get("/widget/campaigns/nulle-part")).status_code == 404


async def test_staff_create_and_publish_a_campaign_from_the_admin_pages(client, sessions, world, settings):
    assert (await client.get("/admin/campaigns")).status_code == 303  # log in first
    await login_as(client, sessions, settings, world.users["staff"])
    form = await client.get("/admin/campaigns/new")
    token = csrf_of(form.text)
    data = {"csrf_token": token, "site": world.site_slug, "slug": "cuisine", "title": "Une cuisine partagée",
            "summary": "Cuisiner ensemble à Puy-Guillaume", "description": "Une **cuisine** pour tous.", "image_url": "",
            "goal": "6 000", "currency": "EUR", "mode": "all_or_nothing", "starts_at": "2026-01-05T09:00",
            "ends_at": "2026-02-15T20:00", "min_amount": "", "max_amount": "", "free_amount": "1"}
    bad = await client.post("/admin/campaigns/new", data={**data, "goal": "beaucoup"})
    assert bad.status_code == 400 and "montant invalide" in bad.text
    created = await client.post("/admin/campaigns/new", data=data)
    assert created.status_code == 303 and created.headers["location"] == "/admin/campaigns/cuisine"
    tier = await client.post("/admin/campaigns/cuisine/tiers", data={"csrf_token": token, "title": "Tablier brodé",
                                                                     "amount": "35", "kind": "reward", "reward_value": "12",
                                                                     "vat_rate": "20", "stock": "40", "description": ""})
    assert tier.status_code == 303
    view = await client.get("/admin/campaigns/cuisine")
    assert view.status_code == 200 and "Tablier brodé" in view.text and "40 / 40" in view.text
    assert "/widget/campaigns/cuisine" in view.text
    async with sessions() as session:
        campaign = await session.scalar(select(Campaign).where(Campaign.slug == "cuisine"))
    assert (campaign.goal, campaign.mode, campaign.status) == (600_000, "all_or_nothing", "draft")


async def test_the_owner_view_chases_failed_charges_and_exports_every_pledge(client, sessions, world, settings):
    campaign = await page_with_backers(sessions, world)
    from sqlalchemy import update

    from funding.db import transaction

    late = await pledge(sessions, campaign.id, amount="42", name="Inès Fabre", email="ines@example.org")
    async with transaction(sessions) as session:
        await session.execute(update(Pledge).where(Pledge.id == late.id).values(status="card_declined", last_error="fonds insuffisants"))
    await login_as(client, sessions, settings, world.users["accountant"])
    view = await client.get(f"/admin/campaigns/{campaign.slug}")
    assert view.status_code == 200
    chase = view.text.split('id="chase-title"')[1].split("</section>")[0]
    assert "Inès Fabre" in chase and "ines@example.org" in chase and "fonds insuffisants" in chase
    assert "Publier" not in view.text  # an accountant reads, staff act
    csv = await client.get(f"/admin/campaigns/{campaign.slug}/pledges.csv")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.lstrip("\ufeff").strip().split("\r\n")
    assert lines[0].startswith("contribution;date;statut;nom;email;montant") and len(lines) == 5
    assert any("Inès Fabre;ines@example.org;42,00;EUR" in line for line in lines)
    forbidden = await client.post(f"/admin/campaigns/{campaign.slug}/publish", data={"csrf_token": csrf_of(view.text)})
    assert forbidden.status_code == 403


@pytest.mark.parametrize("path", ["/campagnes", "/admin/campaigns/recus"])
async def test_lists_render(client, sessions, world, settings, path):
    await page_with_backers(sessions, world)
    await login_as(client, sessions, settings, world.users["admin"])
    response = await client.get(path)
    assert response.status_code == 200 and ("Campagne laser" in response.text or "Martine Chabrier" in response.text)


async def test_the_owner_views_pledges_a_page_at_a_time_in_one_statement(client, sessions, world, settings):
    """The staff list of pledges (issue 19): newest first, the page's pledges with their tier's title in one
    statement, a link to the older ones while there are more; the rows the page shows, not whole pledges."""
    campaign = await page_with_backers(sessions, world)
    for n in range(4):
        await pledge(sessions, campaign.id, amount=str(10 + n), name=f"Contributeur {n}", email=f"c{n}@example.org")
    async with sessions() as session:
        with counted(sessions) as sent:
            rows, older = await pledge_page(session, campaign.id, limit=3)
        assert len(sent) == 1, sent
        assert [r.name for r in rows] == ["Contributeur 3", "Contributeur 2", "Contributeur 1"] and older == rows[-1].id
        rest, none = await pledge_page(session, campaign.id, before=older, limit=4)
        assert none is None and [r.name for r in rest] == ["Contributeur 0", "Élodie Vernet", "Karim Benali",
                                                           "Martine Chabrier"]
        assert [(r.amount, r.tier_title, r.nature, r.status) for r in rest[2:]] == [
            (8000, "Couteau de Thiers", "sale", "paid"), (2500, "Porte-clés gravé", "gift", "paid")]
        assert (rest[1].tier_title, rest[1].currency, rest[1].amount_refunded) == (None, "EUR", 0)
    await login_as(client, sessions, settings, world.users["accountant"])
    view = await client.get(f"/admin/campaigns/{campaign.slug}")
    pledges = view.text.split('id="pledges-title"')[1].split("</section>")[0]
    assert view.status_code == 200 and "avant=" not in pledges  # seven pledges: one page
    assert pledges.index("Contributeur 3") < pledges.index("Martine Chabrier") and "Couteau de Thiers" in pledges
    older = await client.get(f"/admin/campaigns/{campaign.slug}?avant={rows[0].id}")
    pledges = older.text.split('id="pledges-title"')[1].split("</section>")[0]
    assert "Contributeur 3" not in pledges and "Contributeur 2" in pledges and "Porte-clés gravé" in pledges
