"""The till of issue 17 over HTTP: a search that forgives accents, a walk-in's public pages."""

from __future__ import annotations

import pytest

from tests.support.bar import make_bar
from tests.support.web import login_as, text_of


@pytest.mark.parametrize("typed", ["Élise", "Elise", "élise", "ELISE", "Rochias"])
async def test_the_till_finds_a_member_however_the_accents_are_typed(client, sessions, settings, world, typed):
    from funding.auth.service import create_user
    from funding.db import transaction

    await make_bar(sessions, world)
    async with transaction(sessions) as session:
        for name, email in (("Élise Rochias", "er"), ("Elise Martin", "em")):
            await create_user(session, email=f"{email}-{world.siren}@example.org", name=name, role="member", org_id=world.org_id)
    await login_as(client, sessions, settings, world.users["staff"])
    page = text_of((await client.get(f"/bar/{world.site_slug}/caisse", params={"q": typed})).text)
    assert "Élise Rochias" in page
    if typed != "Rochias":
        assert "Elise Martin" in page


async def test_the_walk_in_s_return_pages_are_public_and_say_nothing_of_the_sale(client, world):
    canceled = await client.get(f"/bar/{world.site_slug}/comptoir/1/paiement-annule")
    assert canceled.status_code == 200 and "Rien n'a été débité" in text_of(canceled.text)
    # The thanks page needs the Checkout session that paid this very sale.
    assert (await client.get(f"/bar/{world.site_slug}/comptoir/1/merci", params={"session_id": "cs_x"})).status_code == 404
