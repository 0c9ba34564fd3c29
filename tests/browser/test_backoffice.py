"""A staff member on a phone logs in by magic link and records a grant."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from funding.db import create_engine
from tests.support.db import run_async, sealed_sessions
from tests.support.world import make_world

pytestmark = pytest.mark.browser


def _world(database_url):
    async def build():
        engine = create_engine(database_url)
        try:
            return await make_world(sealed_sessions(engine))
        finally:
            await engine.dispose()

    # Playwright's sync API keeps an event loop running in this thread: use another one.
    return run_async(build)


def test_staff_log_in_by_magic_link_and_record_a_grant_on_a_phone(live_server, live_settings, phone):
    world = _world(live_settings.database_url)
    page = phone
    page.goto(live_server.url + "/")
    page.get_by_role("link", name="Se connecter").click()
    page.get_by_label("Adresse e-mail").fill(f"staff-{world.siren[-4:]}@example.org")
    page.get_by_role("button", name="Recevoir un lien de connexion").click()
    page.get_by_text("un lien de connexion vient de lui être envoyé").wait_for()

    # The link is written after the answer (the same answer, in the same time, for any address):
    # look again until it is in the mailbox.
    link = None
    for _ in range(60):
        page.goto(live_server.url + "/dev/mailbox")
        found = re.search(r"http://127\.0\.0\.1:\d+/login/\S+", page.content())
        if found:
            link = found.group(0).split("<")[0].split('"')[0]
            break
        page.wait_for_timeout(500)
    assert link, "no login link in the development mailbox after 30 s"
    page.goto(link)
    page.get_by_role("button", name="Me connecter").click()
    page.wait_for_url(f"{live_server.url}/bar/{world.site_slug}/caisse")  # staff land on their till

    page.goto(live_server.url + "/admin/ledger/record")
    page.get_by_label("Type").select_option("grant-notified")
    page.get_by_label("Lieu").select_option(world.site_slug)
    page.get_by_label("Date", exact=True).fill(dt.date.today().isoformat())
    page.get_by_label("Montant (TTC, en euros)").fill("12 000,00")
    page.get_by_label("Financeur, mécène ou partenaire").fill("Thiers Dore et Montagne")
    page.get_by_label("SIRET du financeur (subvention)").fill("20005376700014")
    page.get_by_label("Référence de la décision ou convention (subvention)").fill("TDM-2026-1")
    page.get_by_label("Objet (subvention)").fill("Équipement du FabLab")
    page.get_by_role("button", name="Enregistrer", exact=True).click()
    page.wait_for_url(live_server.url + "/admin/ledger")
    page.get_by_text("1 opération(s) enregistrée(s)").wait_for()
    assert "12\u202f000,00\u00a0€" in page.locator("table").inner_text()

    # It fits a phone: nothing wider than the screen but the scrollable table.
    overflow = page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
    assert overflow is False
