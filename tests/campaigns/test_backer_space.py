"""The backer's space: a backer logs in with the address they gave with and finds every
contribution, promise and receipt there (observed: a backer had no space, and a lost email
was a lost receipt)."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from funding.auth.models import Membership, User
from funding.mail.models import Email
from tests.support.campaigns import active_pledge, make_campaign, paid_pledge
from tests.support.web import csrf_of


async def _login_link(sessions, email: str) -> str | None:
    async with sessions() as session:
        body = await session.scalar(select(Email.body_text).where(Email.to_addr == email, Email.dedupe_key.like("login:%"))
                                    .order_by(Email.id.desc()).limit(1))
    found = re.search(r"http://testserver(/login/\S+)", body or "")
    return found.group(1) if found else None


async def test_a_backer_logs_in_with_their_address_and_finds_everything_they_gave(client, sessions, world):
    keep = await make_campaign(sessions, world, slug="laser")
    aon = await make_campaign(sessions, world, slug="cuisine", mode="all_or_nothing")
    await paid_pledge(sessions, keep.id, email="ana@example.org", amount="40")
    await active_pledge(sessions, aon.id, email="ana@example.org", amount="25")
    await paid_pledge(sessions, keep.id, email="bob@example.org", amount="99")

    page = await client.get("/login")
    for address in ("Ana@Example.org", "nobody@example.org"):
        sent = await client.post("/login", data={"csrf_token": csrf_of(page.text), "email": address})
        assert sent.status_code == 200
    assert await _login_link(sessions, "nobody@example.org") is None  # no contribution, no account
    async with sessions() as session:
        assert await session.scalar(select(func.count(User.id)).where(User.email == "nobody@example.org")) == 0
        user = await session.scalar(select(User).where(User.email == "ana@example.org"))
        assert user is not None and user.name == "Ana Martin"
        assert await session.scalar(select(func.count(Membership.id)).where(Membership.user_id == user.id)) == 0

    link = await _login_link(sessions, "ana@example.org")
    confirm = await client.get(link)
    landed = await client.post(link, data={"csrf_token": csrf_of(confirm.text)})
    assert landed.status_code in (302, 303) and landed.headers["location"] == "/mes-contributions"
    space = await client.get("/mes-contributions")
    assert space.status_code == 200
    text = space.text
    assert "Campagne laser" in text and "Campagne cuisine" in text
    assert "40,00" in text and "25,00" in text and "99,00" not in text  # only their own
    assert "Reçu fiscal" in text and "Voir et gérer" in text  # a receipt; a promise that can change
    manage = re.search(r'<a href="(/contributions/[^"]+)">Voir et gérer</a>', text).group(1)
    assert (await client.get(manage)).status_code == 200
    receipt = re.search(r'<td><a href="(/recus/[^"]+)">', text).group(1)
    assert (await client.get(receipt)).status_code == 200
    assert (await client.get("/admin")).status_code in (302, 303, 403)  # no role: no back office


async def test_the_space_wants_a_login(client):
    response = await client.get("/mes-contributions")
    assert response.status_code in (302, 303) and "/login" in response.headers["location"]
