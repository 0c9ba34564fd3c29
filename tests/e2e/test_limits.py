"""Stock held only while a Checkout can complete, and the forms' rate limits, through the live
app and the offline Stripe sandbox (its clock advanced past the sessions' expiry)."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from sqlalchemy import select

from funding.campaigns import deadline
from funding.campaigns.models import Pledge, Tier
from funding.db import utcnow
from funding.stripe_gateway import StripeGateway
from tests.support.campaigns import make_campaign
from tests.support.e2e import DONOR_ADDRESS, advance, db_call, sandbox_get, wait_for
from tests.support.web import csrf_of, text_of
from tests.support.world import make_world


@pytest.fixture
def e2e_settings(e2e_settings):
    # One proxy in front (as on a Procfile platform): each backer is told apart by X-Forwarded-For.
    return e2e_settings.with_(trusted_proxies=1, rate_limits=(("donate", 2, 3600),))


def close(server, moment: dt.datetime) -> int:
    """The worker's campaign job (deadlines and the Checkout sweep) as of ``moment``."""
    async def go(sessions):
        gw = StripeGateway(server.settings)
        try:
            return await deadline.run(sessions, server.settings, gw, now=moment)
        finally:
            await gw.aclose()

    return db_call(server.settings, go)


def pledges_of(server, campaign_id: int) -> list[Pledge]:
    async def go(sessions):
        async with sessions() as session:
            return list((await session.scalars(select(Pledge).where(Pledge.campaign_id == campaign_id).order_by(Pledge.id))).all())

    return db_call(server.settings, go)


def _backer(client: httpx.Client, slug: str, tier_id: int, ip: str, name: str) -> httpx.Response:
    page = client.get(f"/campagnes/{slug}", headers={"x-forwarded-for": ip})
    return client.post(f"/campagnes/{slug}/contribuer", headers={"x-forwarded-for": ip}, data={
        "csrf_token": csrf_of(page.text), "currency": "EUR", "tier": str(tier_id), "amount": "", "name": name,
        "email": f"{name.split()[0].lower()}@example.org", "address": "12 rue de la Coutellerie, 63300 Thiers",
        "show_name": "", "public_name": "", "message": ""})


def _remaining(e2e, tier_id: int) -> int:
    async def go(sessions):
        async with sessions() as session:
            return await session.scalar(select(Tier.remaining).where(Tier.id == tier_id))

    return db_call(e2e.settings, go)


def _tier(e2e, campaign_id: int) -> int:
    async def go(sessions):
        async with sessions() as session:
            return await session.scalar(select(Tier.id).where(Tier.campaign_id == campaign_id))

    return db_call(e2e.settings, go)


def test_three_abandoned_checkouts_give_back_a_three_unit_reward_when_their_sessions_expire(e2e):
    world = db_call(e2e.settings, make_world)
    campaign = db_call(e2e.settings, lambda s: make_campaign(s, world, slug="couteaux", free_amount=False, tiers=[
        {"title": "Couteau de Thiers gravé", "amount": 6000, "kind": "reward", "value": 4500, "stock": 3}]))
    tier_id = _tier(e2e, campaign.id)
    with httpx.Client(base_url=e2e.url, follow_redirects=False, timeout=20) as client:
        for n, name in enumerate(("Lucie Brugière", "Paul Fayet", "Inès Rodier"), start=1):
            response = _backer(client, "couteaux", tier_id, f"203.0.113.{n}", name)
            assert response.status_code == 303 and "/_sandbox/stripe/checkout/cs_" in response.headers["location"]
        late = _backer(client, "couteaux", tier_id, "203.0.113.9", "Marc Dufour")
        assert late.status_code == 400 and "épuisée" in text_of(late.text)
        assert _remaining(e2e, tier_id) == 0

        pledges = pledges_of(e2e, campaign.id)
        sessions = [sandbox_get(e2e, f"/v1/checkout/sessions/{p.checkout_session_id}") for p in pledges]
        for pledge, cs in zip(pledges, sessions, strict=True):  # Checkout lives 30 minutes (and the way to Stripe)
            created = pledge.created_at.replace(tzinfo=dt.UTC).timestamp()
            assert cs["status"] == "open" and 30 * 60 <= cs["expires_at"] - created <= 32 * 60

        advance(e2e, 31 * 60 + 30)  # the sandbox expires them and sends checkout.session.expired
        wait_for(lambda: _remaining(e2e, tier_id) == 3, what="the units given back by the expiry webhooks")
        assert [p.status for p in pledges_of(e2e, campaign.id)] == ["expired"] * 3
        # The reward is on offer again (a new Checkout is not opened here: the sandbox's clock is
        # now half an hour ahead of ours, and Stripe's never is).
        (tier,) = client.get("/api/campaigns/couteaux").json()["tiers"]
        assert (tier["remaining"], tier["sold_out"]) == (3, False)


def test_the_sweep_gives_back_a_unit_whose_expiry_event_never_came(e2e):
    world = db_call(e2e.settings, make_world)
    campaign = db_call(e2e.settings, lambda s: make_campaign(s, world, slug="forge", free_amount=False, tiers=[
        {"title": "Stage de forge", "amount": 9000, "kind": "reward", "value": 9000, "stock": 1}]))
    tier_id = _tier(e2e, campaign.id)
    with httpx.Client(base_url=e2e.url, follow_redirects=False, timeout=20) as client:
        assert _backer(client, "forge", tier_id, "198.51.100.7", "Jeanne Vidal").status_code == 303
    assert _remaining(e2e, tier_id) == 0
    assert close(e2e, utcnow() + dt.timedelta(minutes=20)) == 0  # its Checkout can still complete: held
    assert _remaining(e2e, tier_id) == 0
    close(e2e, utcnow() + dt.timedelta(minutes=37))  # past its expiry: the worker's sweep expires it at Stripe
    (pledge,) = pledges_of(e2e, campaign.id)
    assert pledge.status == "expired" and _remaining(e2e, tier_id) == 1
    assert sandbox_get(e2e, f"/v1/checkout/sessions/{pledge.checkout_session_id}")["status"] == "expired"


def test_donations_past_the_limit_get_the_form_again_with_a_french_message_and_retry_after(e2e):
    world = db_call(e2e.settings, make_world)
    with httpx.Client(base_url=e2e.url, follow_redirects=False, timeout=20) as client:
        statuses = []
        for _ in range(3):
            form = client.get("/soutenir", headers={"x-forwarded-for": "192.0.2.44"})
            response = client.post("/soutenir", headers={"x-forwarded-for": "192.0.2.44"}, data={
                "csrf_token": csrf_of(form.text), "site": world.site_slug, "amount": "20", "other": "",
                "name": "Odile Chassaing", "email": "odile@example.org", **DONOR_ADDRESS})
            statuses.append(response.status_code)
        assert statuses == [303, 303, 429]
        assert int(response.headers["retry-after"]) > 0
        assert "Trop de demandes en peu de temps" in text_of(response.text) and 'value="Odile Chassaing"' in response.text
        form = client.get("/soutenir", headers={"x-forwarded-for": "192.0.2.45"})  # another visitor
        other = client.post("/soutenir", headers={"x-forwarded-for": "192.0.2.45"}, data={
            "csrf_token": csrf_of(form.text), "site": world.site_slug, "amount": "20", "other": "",
            "name": "Rémi Gouttefangeas", "email": "remi@example.org", **DONOR_ADDRESS})
        assert other.status_code == 303

    async def pending(sessions):
        async with sessions() as session:
            return (await session.scalars(select(Pledge.id))).all()

    assert db_call(e2e.settings, pending) == []
