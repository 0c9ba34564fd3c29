"""Builders for campaign tests: campaigns in any state, pledges in any state, without Stripe."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from funding.campaigns import settle
from funding.campaigns.models import Campaign, Match, Pledge, Tier
from funding.campaigns.pledges import Contribution, create_pledge, move
from funding.db import transaction, utcnow

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
                 email: str = "ana@example.org", show_name: bool = True, message: str = "", address: str = "") -> Pledge:
    async with transaction(sessions) as session:
        return await create_pledge(session, campaign_id, Contribution(
            amount=amount, tier=tier, name=name, email=email, show_name=show_name, message=message, address=address),
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
