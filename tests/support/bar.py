"""Builders for the bar's tests: a site's products and members with tabs."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from funding.auth.service import create_user
from funding.bar.catalog import add_product
from funding.bar.models import Batch
from funding.bar.settlement import cut_off
from funding.bar.till import ring_up
from funding.coworking.models import Member, Subscription
from funding.db import transaction, utcnow
from funding.orgs.models import Site
from tests.support.world import World

LIMIT = 5000
MENU = [  # name, category, price TTC as typed, VAT rate as typed
    ("Café", "Boissons chaudes", "1,50", "10"),
    ("Thé", "Boissons chaudes", "2,00", "10"),
    ("Jus de pomme d'Auvergne", "Boissons fraîches", "3,00", "5,5"),
    ("Bière locale", "Alcools", "4,50", "20"),
    ("Sandwich", "Snacks", "5,50", "10"),
]
PRICES = {"Café": 150, "Thé": 200, "Jus de pomme d'Auvergne": 300, "Bière locale": 450, "Sandwich": 550}


@dataclass
class Bar:
    world: World
    products: dict[str, int]
    members: list[int]


async def make_bar(sessions, world: World, *, members: int = 2) -> Bar:
    async with transaction(sessions) as session:
        site = await session.get(Site, world.site_id)
        products = {}
        for name, category, price, rate in MENU:
            products[name] = (await add_product(session, site, name=name, category=category, price=price,
                                                vat_rate=rate)).id
        ids = [world.users["member"]]
        for n in range(members - 1):
            user = await create_user(session, email=f"membre{n}-{world.siren}@example.org", name=f"Membre {n} {world.siren}",
                                     role="member", org_id=world.org_id)
            ids.append(user.id)
    return Bar(world, products, ids)


async def sell(sessions, bar: Bar, product: str, *, member: int | None = None, ticket: int | None = None, quantity=1,
               limit: int = LIMIT, site_id: int | None = None, now=None):
    async with transaction(sessions) as session:
        site = await session.get(Site, site_id or bar.world.site_id)
        rung = await ring_up(session, site, product_id=bar.products[product],
                             member_id=None if ticket else (member or bar.members[0]), ticket_id=ticket,
                             quantity=quantity, limit=limit, recorded_by="Louis", now=now)
        return rung.line


async def site_of(session, world: World) -> Site:
    return await session.scalar(select(Site).where(Site.id == world.site_id))


async def coworker(sessions, world, user_id: int, *, customer: str | None = "cus_bar1", subscription: bool = False):
    async with transaction(sessions) as session:
        member = Member(user_id=user_id, site_id=world.site_id, org_id=world.org_id, stripe_customer_id=customer)
        session.add(member)
        await session.flush()
        if subscription:
            session.add(Subscription(member_id=member.id, site_id=world.site_id, kind="workspace", status="active",
                                     stripe_subscription_id=f"sub_{customer}", started_at=utcnow(), version=1))
    return member


async def a_batch(sessions, world, bar) -> Batch:
    for product in ("Café", "Bière locale", "Sandwich"):
        await sell(sessions, bar, product)
    [batch_id] = await cut_off(sessions, key="2026-11", site_ids=[world.site_id])
    async with sessions() as session:
        return await session.get(Batch, batch_id)
