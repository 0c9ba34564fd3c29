"""A backer on a phone contributes to a campaign from its page, pays on the sandbox's Checkout
page in Debian's chromium, and sees the progress bar move."""

from __future__ import annotations

import pytest

from funding.db import create_engine
from tests.support.campaigns import make_campaign, paid_pledge
from tests.support.db import run_async, sealed_sessions
from tests.support.world import make_world

pytestmark = pytest.mark.browser


def _setup(database_url):
    async def build():
        engine = create_engine(database_url)
        try:
            sessions = sealed_sessions(engine)
            world = await make_world(sessions)
            campaign = await make_campaign(sessions, world, slug="decoupeuse-laser", goal=20_000, tiers=[
                {"title": "Porte-clés gravé au laser", "amount": 2500, "kind": "reward", "value": 500, "stock": 10},
            ], match={"cap": 2000, "total": 5000, "funder": "Thiers Dore et Montagne"})
            await paid_pledge(sessions, campaign.id, amount="20", name="Martine Chabrier", email="martine@example.org")
            return campaign
        finally:
            await engine.dispose()

    # Playwright's sync API keeps an event loop running in this thread: use another one.
    return run_async(build)


def _bar(page) -> tuple[int, int]:
    bar = page.get_by_role("progressbar")
    return int(bar.get_attribute("data-percent")), int(bar.get_attribute("aria-valuenow"))


def test_a_backer_contributes_from_the_campaign_page_and_sees_the_bar_move(live_server, live_settings, phone):
    _setup(live_settings.database_url)
    page = phone
    page.goto(live_server.url + "/campagnes")
    page.get_by_role("link", name="Campagne decoupeuse-laser").click()
    page.wait_for_url(live_server.url + "/campagnes/decoupeuse-laser")
    # 20 € from the crowd + 20 € matched, of 200 €: 20 %
    assert _bar(page) == (20, 20)
    assert page.locator("#backers").inner_text() == "1"

    page.get_by_label("Porte-clés gravé au laser — 25,00 €").check()
    page.get_by_label("Nom et prénom").fill("Karim Benali")
    page.get_by_label("Adresse e-mail (pour le reçu)").fill("karim.benali@example.fr")
    page.get_by_label("Numéro et rue").fill("12 rue de la Coutellerie")  # a gift's tax receipt needs the address
    page.get_by_label("Code postal").fill("63300")
    page.get_by_label("Ville").fill("Thiers")
    page.get_by_label("Afficher mon nom").check()
    page.get_by_label("Un mot pour le projet (public, facultatif)").fill("Hâte de graver mon porte-clés !")
    page.get_by_role("button", name="Contribuer par carte").click()

    page.wait_for_url("**/_sandbox/stripe/checkout/cs_*")
    assert "25,00" in page.locator("body").inner_text()
    page.locator("#cardholder-name").fill("Karim Benali")
    page.locator("#card-number").fill("4242 4242 4242 4242")
    page.locator("#card-expiry").fill("12/34")
    page.locator("#card-cvc").fill("123")
    page.locator("#pay").click()

    page.wait_for_url("**/campagnes/decoupeuse-laser/merci?session_id=cs_*")
    page.get_by_role("heading", name="Merci !").wait_for()
    # 45 € from the crowd + 40 € matched (20 € cap per contribution), of 200 €: 42 %
    assert _bar(page) == (42, 42)
    page.get_by_role("link", name="Retour à la campagne").click()
    page.wait_for_url(live_server.url + "/campagnes/decoupeuse-laser")
    assert _bar(page) == (42, 42)
    assert page.locator("#backers").inner_text() == "2"
    wall = page.get_by_role("region", name="Ils et elles soutiennent le projet")
    assert "Karim Benali" in wall.inner_text() and "Hâte de graver mon porte-clés !" in wall.inner_text()
    assert "Plus que 9 disponibles." in page.locator("body").inner_text()
    width = page.evaluate("getComputedStyle(document.querySelector('.cf-crowd')).width")
    assert float(width.removesuffix("px")) > 0
    assert page.evaluate("document.documentElement.scrollWidth > window.innerWidth") is False
