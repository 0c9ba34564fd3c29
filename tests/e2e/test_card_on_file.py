"""Issue 17: the all-or-nothing card page says what the card is saved for (the amount and the
campaign), and the card on file (brand, last four digits, expiry, as Stripe's payment method
has them) is shown in the backer's space and in the member area."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import select

from funding.mail.models import Email
from tests.support.campaigns import make_campaign
from tests.support.e2e import GOOD, db_call, join, member_client, pay_on_hosted_page, setup, wait_for
from tests.support.web import csrf_of
from tests.support.world import make_world


def promise(client: httpx.Client, slug: str, amount: str, email: str) -> str:
    page = client.get(f"/campagnes/{slug}")
    data = {"csrf_token": csrf_of(page.text), "currency": "EUR", "tier": "", "amount": amount, "name": "Rose Baptiste",
            "email": email, "street": "3 rue Durolle", "postcode": "63300", "town": "Thiers", "country": "France",
            "show_name": "1", "public_name": "", "message": ""}
    response = client.post(f"/campagnes/{slug}/contribuer", data=data)
    assert response.status_code == 303, response.text[:500]
    return response.headers["location"]


def log_in_by_mail(e2e, client: httpx.Client, email: str) -> None:
    sent = client.post("/login", data={"csrf_token": csrf_of(client.get("/login").text), "email": email})
    assert sent.status_code == 200

    async def link(sessions):
        async with sessions() as session:
            return await session.scalar(select(Email.body_text).where(Email.to_addr == email, Email.dedupe_key.like("login:%"))
                                        .order_by(Email.id.desc()).limit(1))

    body = wait_for(lambda: db_call(e2e.settings, link), what="the login email")
    path = re.search(r"https?://[^/\s]+(/login/\S+)", body).group(1)
    assert client.post(path, data={"csrf_token": csrf_of(client.get(path).text)}).status_code == 303


def test_the_card_page_names_the_amount_and_campaign_and_the_backer_space_shows_the_card(e2e):
    world = db_call(e2e.settings, make_world)
    db_call(e2e.settings, lambda s: make_campaign(s, world, slug="fournil", mode="all_or_nothing", goal=100_000))
    with httpx.Client(base_url=e2e.url, follow_redirects=False, timeout=30) as client:
        checkout = promise(client, "fournil", "60", "rose@example.org")
        card_page = client.get(checkout)
        assert card_page.status_code == 200
        assert "60,00" in card_page.text and "Campagne fournil" in card_page.text, card_page.text[:2000]
        paid = pay_on_hosted_page(client, checkout, GOOD, name="Rose Baptiste", email=None)
        assert client.get(paid.headers["location"]).status_code == 200
        log_in_by_mail(e2e, client, "rose@example.org")
        space = client.get("/mes-contributions")
        assert space.status_code == 200
        assert re.search(r"Visa[^<]*•+\s*4242", space.text) and "12/2034" in space.text, space.text


def test_the_member_area_shows_the_card_on_file(e2e):
    world = setup(e2e)
    member_id = join(e2e, world, "flex", "Hugo Marchand", "hugo@example.org")
    with member_client(e2e, member_id) as client:
        area = client.get("/membre")
        assert area.status_code == 200
        assert re.search(r"Visa[^<]*•+\s*4242", area.text) and "12/2034" in area.text
