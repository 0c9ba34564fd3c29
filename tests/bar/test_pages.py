"""The till and the bar's pages over HTTP: one form POST per tap, clear refusals, roles."""

from __future__ import annotations

from sqlalchemy import select

from funding.bar.models import Product, SaleLine, TillClosing
from tests.support.bar import make_bar
from tests.support.web import csrf_of, login_as


async def _staff(client, sessions, settings, world):
    await login_as(client, sessions, settings, world.users["staff"])


async def test_a_tap_on_the_till_records_a_line_and_shows_the_tab(client, sessions, settings, world):
    bar = await make_bar(sessions, world)
    await _staff(client, sessions, settings, world)
    till = f"/bar/{world.site_slug}/caisse"
    found = await client.get(till, params={"q": "member"})
    assert found.status_code == 200 and f'href="{till}?membre={bar.members[0]}"' in found.text
    page = await client.get(till, params={"membre": bar.members[0]})
    assert page.status_code == 200 and "Jus de pomme d&#39;Auvergne" in page.text and "1,50" in page.text
    token = csrf_of(page.text)
    for product in ("Café", "Bière locale"):
        response = await client.post(f"{till}/vente", data={"csrf_token": token, "product_id": bar.products[product],
                                                            "member_id": bar.members[0]})
        assert response.status_code == 303 and response.headers["location"] == f"{till}?membre={bar.members[0]}"
        page = await client.get(response.headers["location"])
        assert f"{product} ajouté" in page.text
    assert "Ardoise : 6,00" in page.text
    # The same tap from the page's script: JSON in, JSON out, no reload.
    fast = await client.post(f"{till}/vente", data={"product_id": bar.products["Thé"], "member_id": bar.members[0]},
                             headers={"accept": "application/json", "x-csrf-token": token})
    assert fast.status_code == 200 and fast.json()["ok"] and fast.json()["balance"] == "8,00\u00a0€"
    async with sessions() as session:
        assert len((await session.scalars(select(SaleLine))).all()) == 3


async def test_a_tap_on_a_walk_in_sale_answers_the_amount_to_collect(client, sessions, settings, world):
    """Found by the bar persona of tests/browser/test_personas.py: on a walk-in sale the page's
    script got no total back, so the till kept showing "0,00 € à encaisser" until a reload."""
    bar = await make_bar(sessions, world)
    await _staff(client, sessions, settings, world)
    till = f"/bar/{world.site_slug}/caisse"
    token = csrf_of((await client.get(till)).text)
    opened = await client.post(f"{till[:-len('/caisse')]}/comptoir", data={"csrf_token": token})
    ticket = int(opened.headers["location"].rsplit("=", 1)[1])
    headers = {"accept": "application/json", "x-csrf-token": token}
    for product, total in (("Bière locale", "4,50\u00a0€"), ("Café", "6,00\u00a0€")):
        fast = await client.post(f"{till}/vente", data={"product_id": bar.products[product], "ticket_id": ticket},
                                 headers=headers)
        assert fast.status_code == 200 and fast.json()["balance"] == total, fast.json()


async def test_refusals_reach_the_till_as_clear_messages(client, sessions, settings, world):
    bar = await make_bar(sessions, world)
    await _staff(client, sessions, settings, world)
    till = f"/bar/{world.site_slug}/caisse"
    token = csrf_of((await client.get(till)).text)
    headers = {"accept": "application/json", "x-csrf-token": token}
    cases = [
        ({"product_id": "424242", "member_id": bar.members[0]}, "Produit inconnu"),
        ({"product_id": bar.products["Café"], "member_id": bar.members[0], "quantity": "-2"}, "Quantité négative refusée"),
        ({"product_id": bar.products["Café"], "member_id": world.users["accountant"]}, "Membre inconnu"),
        ({"product_id": bar.products["Sandwich"], "member_id": bar.members[0], "quantity": "10"}, "Plafond d'ardoise atteint"),
    ]
    for data, message in cases:
        response = await client.post(f"{till}/vente", data=data, headers=headers)
        assert response.status_code == 400 and message in response.json()["error"], (data, response.text)
    plain = await client.post(f"{till}/vente", data={"csrf_token": token, "product_id": "x", "member_id": bar.members[0]})
    assert plain.status_code == 303
    assert "Produit inconnu" in (await client.get(plain.headers["location"])).text
    async with sessions() as session:
        assert (await session.scalars(select(SaleLine))).all() == []


async def test_a_correction_then_the_closing_button_shows_the_cancelling_line(client, sessions, settings, world):
    bar = await make_bar(sessions, world)
    await _staff(client, sessions, settings, world)
    till = f"/bar/{world.site_slug}/caisse"
    token = csrf_of((await client.get(till)).text)
    sold = await client.post(f"{till}/vente", data={"csrf_token": token, "product_id": bar.products["Bière locale"],
                                                    "member_id": bar.members[0]})
    await client.get(sold.headers["location"])  # as a browser does: the page shows (and clears) the message
    async with sessions() as session:
        line = await session.scalar(select(SaleLine))
    refused = await client.post(f"{till}/annulation", data={"csrf_token": token, "line_id": line.id, "reason": "",
                                                            "member_id": bar.members[0]})
    assert "Indiquez le motif" in (await client.get(refused.headers["location"])).text
    await client.post(f"{till}/annulation", data={"csrf_token": token, "line_id": line.id,
                                                  "reason": "Commande changée pour un jus", "member_id": bar.members[0]})
    closed = await client.post(f"{till}/cloture", data={"csrf_token": token})
    assert closed.status_code == 303 and "/clotures/" in closed.headers["location"]
    page = await client.get(closed.headers["location"])
    assert "Commande changée pour un jus" in page.text and "-4,50" in page.text and "Grand total perpétuel" in page.text
    async with sessions() as session:
        assert (await session.scalar(select(TillClosing))).cancel_count == 1


async def test_staff_manage_products_and_a_bad_csv_changes_nothing(client, sessions, settings, world):
    await make_bar(sessions, world)
    await _staff(client, sessions, settings, world)
    url = f"/bar/{world.site_slug}/produits"
    token = csrf_of((await client.get(url)).text)
    added = await client.post(url, data={"csrf_token": token, "name": "Part de tarte", "category": "Pâtisseries",
                                         "price": "3,20", "vat_rate": "10"})
    assert added.status_code == 303
    bad = await client.post(url, data={"csrf_token": token, "name": "Soda", "price": "2,5,0", "vat_rate": "10"})
    assert bad.status_code == 400 and "Prix invalide" in bad.text
    csv = "nom;prix;tva\nCafé;1,60;10\nKir;3,00;19\n".encode()
    refused = await client.post(url, data={"csrf_token": token}, files={"file": ("menu.csv", csv, "text/csv")})
    assert refused.status_code == 400 and "ligne 3, colonne tva : Taux de TVA invalide" in refused.text
    async with sessions() as session:
        products = {p.name: p.price for p in (await session.scalars(select(Product))).all()}
    assert products["Café"] == 150 and products["Part de tarte"] == 320 and "Kir" not in products and "Soda" not in products


async def test_the_till_is_for_staff_and_the_tab_page_for_its_member(client, sessions, settings, world):
    bar = await make_bar(sessions, world)
    anonymous = await client.get(f"/bar/{world.site_slug}/caisse")
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    await login_as(client, sessions, settings, bar.members[0])
    assert (await client.get(f"/bar/{world.site_slug}/caisse")).status_code == 403
    token = csrf_of((await client.get("/bar/ardoise")).text)
    refused = await client.post(f"/bar/{world.site_slug}/caisse/vente", data={
        "csrf_token": token, "product_id": bar.products["Café"], "member_id": bar.members[0]})
    assert refused.status_code == 403
    page = await client.get("/bar/ardoise")
    assert page.status_code == 200 and "Mon ardoise du bar" in page.text


async def test_the_member_area_shows_the_bar_tab(client, sessions, settings, world):
    from funding.coworking.models import Member
    from funding.db import transaction
    from tests.support.bar import sell

    bar = await make_bar(sessions, world)
    async with transaction(sessions) as session:
        session.add(Member(user_id=bar.members[0], site_id=world.site_id, org_id=world.org_id))
    await sell(sessions, bar, "Bière locale")
    await login_as(client, sessions, settings, bar.members[0])
    page = await client.get("/membre")
    assert page.status_code == 200 and "Mon ardoise du bar" in page.text and "4,50" in page.text
    tab = await client.get("/bar/ardoise")
    assert "Bière locale" in tab.text and "4,50" in tab.text


async def test_the_till_at_another_site_shows_the_members_whole_tab_against_the_limit(client, sessions, settings, world):
    from funding.db import transaction
    from funding.orgs.models import Site
    from tests.support.bar import sell
    from tests.support.web import text_of

    bar = await make_bar(sessions, world)
    for _ in range(8):
        await sell(sessions, bar, "Sandwich")  # 44,00 € at Thiers
    async with transaction(sessions) as session:
        other = await session.get(Site, world.other_site_id)
    await _staff(client, sessions, settings, world)
    page = text_of((await client.get(f"/bar/{other.slug}/caisse", params={"membre": bar.members[0]})).text)
    page = page.replace("\u00a0", " ").replace("\u202f", " ")
    assert "44,00 € / plafond 50,00 €" in page and "dont 0,00 € ici" in page
