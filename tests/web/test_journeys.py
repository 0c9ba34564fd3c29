"""What a first-time user read (issue 17), over HTTP: the words of a finished campaign, of an
empty one, of a used link; where staff land after logging in."""

from __future__ import annotations

import re

from funding.auth.models import User
from funding.auth.service import issue_link
from funding.db import transaction
from tests.support.campaigns import make_campaign
from tests.support.web import csrf_of, text_of


async def _link(sessions, settings, user_id: int) -> str:
    async with transaction(sessions) as session:
        return (await issue_link(session, await session.get(User, user_id), settings)).replace(settings.base_url, "")


async def test_staff_land_on_their_till_and_admins_on_the_back_office(client, sessions, settings, world):
    for role, landing in (("staff", f"/bar/{world.site_slug}/caisse"), ("admin", "/admin"), ("accountant", "/admin")):
        path = await _link(sessions, settings, world.users[role])
        response = await client.post(path, data={"csrf_token": csrf_of((await client.get(path)).text)})
        assert response.status_code == 303 and response.headers["location"] == landing, role
        await client.post("/logout", data={"csrf_token": csrf_of((await client.get("/login")).text)})


async def test_a_link_used_twice_says_it_was_used_not_that_it_expired(client, sessions, settings, world):
    path = await _link(sessions, settings, world.users["member"])
    token = csrf_of((await client.get(path)).text)
    assert (await client.post(path, data={"csrf_token": token})).status_code == 303
    client.cookies.clear()
    token = csrf_of((await client.get("/login")).text)
    again = await client.post(path, data={"csrf_token": token})
    assert again.status_code == 400
    assert "déjà été utilisé" in text_of(again.text) and "expiré" not in text_of(again.text)


async def test_a_finished_campaign_reads_ended_and_an_empty_one_has_no_zero_backers(client, sessions, world):
    await make_campaign(sessions, world, slug="fini", status="closed")
    await make_campaign(sessions, world, slug="neuf", tiers=[
        {"title": "Carte postale", "amount": 500, "kind": "reward", "value": 100, "stock": 5}])
    finished = text_of((await client.get("/campagnes/fini")).text)
    assert "Terminée" in finished and not re.search(r"\bClose\b", finished)
    for path in ("/campagnes/neuf", "/widget/campaigns/neuf"):
        page = text_of((await client.get(path)).text)
        assert "Aucun contributeur encore" in page and "0 contributeur" not in page, path
    page = text_of((await client.get("/campagnes/neuf")).text)
    # "Contrepartie d'une valeur de 1,00 €. Plus que 5 disponibles. Aucun contributeur encore"
    assert re.search(r"€\.\s+Plus que 5 disponibles\.\s+Aucun contributeur", page), page
    english = text_of((await client.get("/campagnes/fini", params={"lang": "en"})).text)
    assert "Ended" in english and not re.search(r"\bClose\b", english)


async def test_cancelling_a_pledge_is_a_second_explicit_tap(client, sessions, world):
    from tests.support.campaigns import pledge

    campaign = await make_campaign(sessions, world, slug="promesse", mode="all_or_nothing")
    made = await pledge(sessions, campaign.id, amount="30")
    page = (await client.get(f"/contributions/{made.access_token}")).text
    confirm = re.search(r'<details class="confirm">\s*<summary>Annuler ma promesse</summary>(.*?)</details>', page, re.S)
    assert confirm and 'id="cancel-pledge"' in confirm.group(1) and "Oui, annuler ma promesse" in confirm.group(1)
