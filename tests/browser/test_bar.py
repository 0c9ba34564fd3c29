"""A staff member rings up three items on the till for a member, on a phone, and sees the tab."""

from __future__ import annotations

import pytest

from funding.auth.models import User
from funding.auth.service import issue_link
from funding.db import create_engine, transaction
from tests.support.bar import make_bar
from tests.support.db import run_async, sealed_sessions
from tests.support.world import make_world

pytestmark = pytest.mark.browser


def _setup(settings):
    async def build():
        engine = create_engine(settings.database_url)
        try:
            sessions = sealed_sessions(engine)
            world = await make_world(sessions)
            bar = await make_bar(sessions, world)
            async with transaction(sessions) as session:
                link = await issue_link(session, await session.get(User, world.users["staff"]), settings)
            return world, bar, link
        finally:
            await engine.dispose()

    # Playwright's sync API keeps an event loop running in this thread: use another one.
    return run_async(build)


def test_three_taps_on_the_till_put_three_items_on_a_member_s_tab(live_server, live_settings, phone):
    world, _bar, link = _setup(live_settings)
    page = phone
    page.goto(link)
    page.get_by_role("button", name="Me connecter").click()
    page.wait_for_url(live_server.url + "/**")

    page.goto(f"{live_server.url}/bar/{world.site_slug}/caisse")
    page.get_by_label("Membre (nom ou e-mail)").fill("Member")
    page.get_by_role("button", name="Chercher").click()
    page.get_by_role("link", name=f"Member {world.siren[-4:]}").click()
    page.get_by_role("heading", name=f"Ardoise de Member {world.siren[-4:]}").wait_for()

    status = page.get_by_role("status").filter(has_text="ajouté")
    for product, balance in (("Café", "1,50"), ("Bière locale", "6,00"), ("Jus de pomme d'Auvergne", "9,00")):
        page.get_by_role("button", name=product).click()
        status.filter(has_text=f"{product} ajouté").wait_for()
        page.locator("[data-balance]").filter(has_text=balance).wait_for()

    # The tab as the server has it, after a reload: three lines, 9,00 €.
    page.reload()
    lines = page.locator("ol.tab-lines > li")
    assert lines.count() == 3
    text = " ".join(lines.all_inner_texts())
    assert "Café" in text and "Bière locale" in text and "Jus de pomme d'Auvergne" in text
    assert page.locator("[data-balance]").inner_text() == "9,00\u00a0€"
    # Big buttons that fit the phone's screen.
    box = page.get_by_role("button", name="Café").bounding_box()
    assert box["height"] >= 44 and box["width"] >= 100
    assert page.evaluate("document.documentElement.scrollWidth > window.innerWidth") is False
