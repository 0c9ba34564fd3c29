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


def _signed_earlier(monkeypatch, make, seconds: int = 30) -> str:
    """A link as it was emailed ``seconds`` ago (itsdangerous dates a signature to the second)."""
    import time

    import itsdangerous.timed

    now = time.time()
    with monkeypatch.context() as patch:
        patch.setattr(itsdangerous.timed.time, "time", lambda: now - seconds)
        return make()


async def test_a_backer_revokes_links_sent_by_mistake_and_gets_fresh_ones(client, sessions, world, settings, monkeypatch):
    from funding.campaigns.models import TaxReceipt
    from funding.campaigns.pledges import pledge_token
    from funding.campaigns.receipts import receipt_token

    campaign = await make_campaign(sessions, world)
    paid = await paid_pledge(sessions, campaign.id, email="ana@example.org")
    other = await paid_pledge(sessions, campaign.id, email="bob@example.org")
    async with sessions() as session:
        receipt_id = await session.scalar(select(TaxReceipt.id).where(TaxReceipt.pledge_id == paid.id))
    old_pledge = "/contributions/" + _signed_earlier(monkeypatch, lambda: pledge_token(settings.secret_key, paid.id))
    old_receipt = "/recus/" + _signed_earlier(monkeypatch, lambda: receipt_token(settings.secret_key, receipt_id))
    bobs = "/contributions/" + _signed_earlier(monkeypatch, lambda: pledge_token(settings.secret_key, other.id))
    page = await client.get(old_pledge)
    assert page.status_code == 200 and 'id="revoke-links"' in page.text
    before = len(await _emails(sessions, "ana@example.org"))

    revoked = await client.post(old_pledge + "/revoquer", data={"csrf_token": csrf_of(page.text)})
    assert revoked.status_code == 200 and "ne s'ouvrent plus" in revoked.text

    for link in (old_pledge, old_receipt, old_pledge + "/recu", old_pledge + "/recu/pdf"):
        refused = await client.get(link)
        assert refused.status_code == 410 and "révoqué" in refused.text, link
    refused = await client.post(old_pledge + "/annuler", data={"csrf_token": csrf_of(page.text)})
    assert refused.status_code == 410  # nor can it act
    assert (await client.get(bobs)).status_code == 200  # another address's links are untouched

    sent = (await _emails(sessions, "ana@example.org"))[before:]
    assert len(sent) == 1
    fresh_pledge = re.search(r"http://testserver(/contributions/[^\s]+)", sent[0].body_text).group(1)
    fresh_receipt = re.search(r"http://testserver(/recus/[^\s]+)", sent[0].body_text).group(1)
    assert fresh_pledge != old_pledge
    assert (await client.get(fresh_pledge)).status_code == 200
    assert (await client.get(fresh_receipt)).status_code == 200
    async with sessions() as session:  # what later emails link to is a fresh link too
        from funding.campaigns.models import Pledge

        stored = await session.scalar(select(Pledge.access_token).where(Pledge.id == paid.id))
    assert (await client.get(f"/contributions/{stored}")).status_code == 200


async def test_staff_revoke_an_address_s_links_from_the_command_line(sessions, world, settings, monkeypatch):
    from funding.campaigns.pledges import pledge_token
    from tests.support.cli import funding

    campaign = await make_campaign(sessions, world)
    paid = await paid_pledge(sessions, campaign.id, email="ana@example.org")
    old = _signed_earlier(monkeypatch, lambda: pledge_token(settings.secret_key, paid.id))
    result = await funding(settings, "campaigns", "revoke-links", "Ana@Example.org", SECRET_KEY=settings.secret_key)
    assert result.exit_code == 0 and "révoqués" in result.output
    async with sessions() as session:
        from funding.campaigns.pledges import TOKEN_PURPOSE
        from funding.campaigns.resend import LinkRevoked, check_not_revoked
        from funding.security import unsign_dated

        _, signed_at = unsign_dated(settings.secret_key, TOKEN_PURPOSE, old, max_age=None)
        try:
            await check_not_revoked(session, settings, "ana@example.org", signed_at)
        except LinkRevoked:
            pass
        else:
            raise AssertionError("the old link still opens")
    bad = await funding(settings, "campaigns", "revoke-links", "not-an-address", SECRET_KEY=settings.secret_key)
    assert bad.exit_code != 0
