"""Builders for campaign tests: campaigns in any state, pledges in any state; and Stripe's
off-session PaymentIntents as the deadline job meets them (:class:`OffSession`)."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qsl

import httpx
from sqlalchemy import select, update

from funding.campaigns import settle
from funding.campaigns.donors import DonorDetails
from funding.campaigns.models import Campaign, Match, Pledge, Tier
from funding.campaigns.pledges import Contribution, create_pledge, move
from funding.db import transaction, utcnow
from tests.support.stripe_objects import BASE, balance_transaction, charge, payment_intent, sid

SECRET = "test-secret-key-0123456789"


async def make_campaign(sessions, world, *, slug: str = "laser", mode: str = "keep_it_all", goal: int = 100_000,
                        status: str = "live", tiers: list[dict] | None = None, match: dict | None = None,
                        days_left: int = 10, free_amount: bool = True, currency: str = "EUR", site_id: int | None = None,
                        min_amount: int = 100, max_amount: int = 1_000_000) -> Campaign:
    """A campaign inserted directly (statuses past draft included), with its tiers and match."""
    now = utcnow()
    async with transaction(sessions) as session:
        campaign = Campaign(
            org_id=world.org_id, site_id=site_id or world.site_id, slug=slug, title=f"Campagne {slug}",
            summary="Un projet du bassin thiernois", description="Un **beau** projet.", goal=goal, currency=currency,
            mode=mode, status=status, starts_at=now - dt.timedelta(days=5), ends_at=now + dt.timedelta(days=days_left),
            min_amount=min_amount, max_amount=max_amount, free_amount=free_amount,
        )
        session.add(campaign)
        await session.flush()
        for position, spec in enumerate(tiers or []):
            stock = spec.get("stock")
            session.add(Tier(campaign_id=campaign.id, position=position, title=spec.get("title", f"Palier {position}"),
                             amount=spec["amount"], kind=spec.get("kind", "gift"), reward_value=spec.get("value", 0),
                             vat_per_mille=spec.get("vat", 0), stock=stock, remaining=stock))
        if match:
            session.add(Match(campaign_id=campaign.id, funder_name=match.get("funder", "Thiers Dore et Montagne"),
                              reference=match.get("reference", f"TDM-{slug}"), ratio_num=match.get("num", 1),
                              ratio_den=match.get("den", 1), cap_per_pledge=match["cap"], total_cap=match["total"]))
        await session.flush()
    return campaign


async def tiers_of(sessions, campaign_id: int) -> list[Tier]:
    async with sessions() as session:
        return list((await session.scalars(select(Tier).where(Tier.campaign_id == campaign_id).order_by(Tier.position))).all())


async def pledge(sessions, campaign_id: int, *, amount: str = "50", tier: str = "", name: str = "Ana Martin",
                 email: str = "ana@example.org", show_name: bool = True, message: str = "",
                 address: str = "3 rue Durolle\n63300 Thiers\nFrance", donor: DonorDetails | None = None,
                 wants_updates: bool = False) -> Pledge:
    async with transaction(sessions) as session:
        return await create_pledge(session, campaign_id, Contribution(
            amount=amount, tier=tier, name=name, email=email, show_name=show_name, message=message, address=address,
            donor=donor or DonorDetails(), wants_updates=wants_updates),
            secret_key=SECRET, link_base="http://testserver")


async def paid_pledge(sessions, campaign_id: int, **kw) -> Pledge:
    made = await pledge(sessions, campaign_id, **kw)
    async with transaction(sessions) as session:
        return await settle.mark_paid(session, made.id, payment_intent_id=f"pi_test_{made.id}")


async def active_pledge(sessions, campaign_id: int, *, pm: str = "pm_card_visa", **kw) -> Pledge:
    """An all-or-nothing promise whose card is saved."""
    made = await pledge(sessions, campaign_id, **kw)
    async with transaction(sessions) as session:
        return await move(session, made.id, ("pending",), "active", customer_id=f"cus_test_{made.id}", payment_method_id=pm)


async def campaign_row(sessions, campaign_id: int) -> Campaign:
    async with sessions() as session:
        return await session.get(Campaign, campaign_id)


async def pledge_row(sessions, pledge_id: int) -> Pledge:
    async with sessions() as session:
        return await session.get(Pledge, pledge_id)




def later(days: float = 0, **kw) -> dt.datetime:
    return utcnow() + dt.timedelta(days=days, **kw)


async def set_status(sessions, campaign_id: int, status: str) -> None:
    async with transaction(sessions) as session:
        await session.execute(update(Campaign).where(Campaign.id == campaign_id).values(status=status))


# How each test payment method behaves off session (Stripe's documented test cards).
DECLINES = {
    "pm_card_authenticationRequired": ("authentication_required", "authentication_required"),
    "pm_card_chargeDeclined": ("card_declined", "generic_decline"),
    "pm_card_chargeCustomerFail": ("card_declined", "generic_decline"),
}


class OffSession:
    """POST /v1/payment_intents (off session, confirm=true) as Stripe answers it, idempotency
    keys honoured: the same key replays the first answer and creates nothing."""

    def __init__(self, fake):
        self.fake = fake
        self.created: list[dict] = []  # PaymentIntents actually created
        self.keys: list[str] = []  # idempotency key of every POST
        self.by_key: dict[str, httpx.Response] = {}
        self.fail_next = 0  # answer 500 to this many POSTs (no definite answer)
        self.fee = 100
        self.canceled: list[str] = []
        fake.router.post(f"{BASE}/v1/payment_intents").mock(side_effect=self._create)
        fake.router.post(url__regex=rf"^{BASE}/v1/payment_intents/(?P<pi>[^/]+)/cancel$").mock(side_effect=self._cancel)

    def _create(self, request: httpx.Request) -> httpx.Response:
        key = request.headers.get("idempotency-key")
        self.keys.append(key)
        if self.fail_next:
            self.fail_next -= 1
            return httpx.Response(500, json={"error": {"type": "api_error", "message": "boom"}})
        if key in self.by_key:
            return self.by_key[key]
        params = dict(parse_qsl(request.content.decode()))
        metadata = {k[len("metadata["):-1]: v for k, v in params.items() if k.startswith("metadata[")}
        amount = int(params["amount"])
        pm = params["payment_method"]
        if pm in DECLINES:
            code, decline = DECLINES[pm]
            pi = payment_intent(amount=amount, metadata=metadata, status="requires_payment_method")
            pi["last_payment_error"] = {"code": code, "decline_code": decline, "message": "Your card was declined.",
                                        "type": "card_error"}
            self.fake.add(pi)
            response = httpx.Response(402, json={"error": {"type": "card_error", "code": code, "decline_code": decline,
                                                           "message": "Your card was declined.", "payment_intent": pi}})
        else:
            ch_id = sid("ch")
            txn = balance_transaction(amount=amount, fee=self.fee, source=ch_id)
            pi = payment_intent(amount=amount, metadata=metadata, latest_charge=ch_id)
            ch = charge(amount=amount, txn=txn["id"], metadata=metadata, payment_intent=pi["id"], charge_id=ch_id)
            self.fake.add(txn, ch, pi)
            response = httpx.Response(200, json=pi)
        self.created.append(pi)
        self.by_key[key] = response
        return response

    def _cancel(self, request: httpx.Request, pi: str) -> httpx.Response:
        self.canceled.append(pi)
        obj = self.fake.objects.get(pi, {"id": pi})
        obj["status"] = "canceled"
        return httpx.Response(200, json=obj)
