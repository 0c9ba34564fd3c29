"""Journeys of issue 17 seen over HTTP in the coworking domain: staff looking at a member."""

from __future__ import annotations

import re

from tests.support.bar import make_bar, sell
from tests.support.coworking import new_member
from tests.support.web import login_as, text_of


async def test_staff_viewing_a_member_reach_the_member_s_bar_tab_at_the_till(app_client, sessions, settings, world):
    member = await new_member(sessions, world, name="Élise Rochias")
    bar = await make_bar(sessions, world)
    await sell(sessions, bar, "Café", member=member.user_id)
    await login_as(app_client, sessions, settings, world.users["staff"])
    page = await app_client.get(f"/admin/coworking/membres/{member.id}")
    assert page.status_code == 200
    assert "/bar/ardoise" not in page.text  # the member's own page: 403 for staff
    link = re.search(r'href="(/bar/[^"]+/caisse\?membre=\d+)"', page.text)
    assert link, text_of(page.text)
    till = await app_client.get(link.group(1).replace("&amp;", "&"))
    assert till.status_code == 200
    assert "Ardoise de Élise Rochias" in text_of(till.text) and "Café" in text_of(till.text)


async def test_status_words_and_the_till_s_script_words_are_in_the_page_s_language(app_client, sessions, settings, world):
    from sqlalchemy import update

    from funding.db import transaction
    from funding.mail.models import Email
    from funding.mail.service import enqueue

    member = await new_member(sessions, world, name="Élise Rochias")
    async with transaction(sessions) as session:
        await enqueue(session, to="elise@example.org", subject="Bienvenue", body_text="Bonjour",
                      dedupe_key=f"welcome:{member.id}", user_id=member.user_id, org_id=world.org_id)
        await session.execute(update(Email).values(status="sent"))
    await login_as(app_client, sessions, settings, world.users["staff"])
    french = text_of((await app_client.get(f"/admin/coworking/membres/{member.id}")).text)
    assert "Bienvenue" in french
    assert " envoyé " in french + " " and " sent " not in french
    till = (await app_client.get(f"/bar/{world.site_slug}/caisse", params={"lang": "en"})).text
    assert "Connection lost" in till and "vérification" not in till
