"""A backer's and a donor's links: they expire, and they can be asked for again, by anyone, for
any address, without learning whether that address gave (observed: pledge and receipt links
never expired and a lost email was a lost receipt)."""

from __future__ import annotations

import re

from sqlalchemy import select

from funding.campaigns import resend
from funding.mail.models import Email
from tests.support.campaigns import make_campaign, paid_pledge
from tests.support.web import csrf_of, text_of


async def _emails(sessions, to: str) -> list[Email]:
    async with sessions() as session:
        return list((await session.scalars(select(Email).where(Email.to_addr == to).order_by(Email.id))).all())


async def test_links_are_sent_again_to_their_address_and_answer_the_same_for_any(client, sessions, world):
    campaign = await make_campaign(sessions, world)
    await paid_pledge(sessions, campaign.id, email="ana@example.org")
    before = len(await _emails(sessions, "ana@example.org"))
    page = await client.get("/contributions/renvoyer")
    assert page.status_code == 200 and 'name="email"' in page.text
    known = await client.post("/contributions/renvoyer", data={"csrf_token": csrf_of(page.text), "email": "Ana@Example.org"})
    unknown = await client.post("/contributions/renvoyer", data={"csrf_token": csrf_of(page.text), "email": "nul@example.org"})
    assert known.status_code == unknown.status_code == 200
    assert text_of(known.text) == text_of(unknown.text)  # nothing tells who gave
    assert await _emails(sessions, "nul@example.org") == []
    sent = (await _emails(sessions, "ana@example.org"))[before:]
    assert len(sent) == 1 and sent[0].subject == "Vos contributions et vos reçus fiscaux"
    pledge_link = re.search(r"http://testserver(/contributions/[^\s]+)", sent[0].body_text).group(1)
    receipt_link = re.search(r"http://testserver(/recus/[^\s]+)", sent[0].body_text).group(1)
    assert "50,00" in sent[0].body_text
    assert (await client.get(pledge_link)).status_code == 200
    assert (await client.get(receipt_link)).status_code == 200

    bad = await client.post("/contributions/renvoyer", data={"csrf_token": csrf_of(page.text), "email": "mallory@example.org,eve"})
    assert bad.status_code == 400 and await _emails(sessions, "mallory@example.org,eve") == []
    statuses = [(await client.post("/contributions/renvoyer", data={"csrf_token": csrf_of(page.text),
                                                                    "email": "ana@example.org"})).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]  # three an hour per address (one already asked above)


async def test_a_pledge_or_receipt_link_expires_and_says_where_to_ask_again(client, sessions, world, monkeypatch):
    campaign = await make_campaign(sessions, world)
    paid = await paid_pledge(sessions, campaign.id, email="ana@example.org")
    link = f"/contributions/{paid.access_token}"
    assert (await client.get(link)).status_code == 200
    monkeypatch.setattr(resend, "PLEDGE_LINK_MAX_AGE", -1)
    expired = await client.get(link)
    assert expired.status_code == 400 and "expiré" in expired.text and "/contributions/renvoyer" in expired.text
