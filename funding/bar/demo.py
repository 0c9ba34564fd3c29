"""Bar demo: each site's menu with its VAT rates, a week of tabs at Thiers and Courpière with
a correction and the daily closings (seed); then, through the Stripe sandbox (play, first
run only): the monthly cut-off, a tab paid off-session on the member's saved card, tabs put
on coworkers' next subscription invoice, a member paying their tab from their area, and a
walk-in paying at the till by QR code. People are made up; some are the coworking demo's.
"""

from __future__ import annotations

import datetime as dt
import logging
import random

import httpx
from sqlalchemy import func, select

from funding.auth.models import User
from funding.auth.service import create_user
from funding.bar.catalog import add_product
from funding.bar.closings import close_day
from funding.bar.models import Batch, BatchStatus, Product, SaleLine
from funding.bar.service import start_tab_payment, start_walk_in_payment
from funding.bar.settlement import billing_job, cut_off, cutoff_key
from funding.bar.till import BarError, cancel, local_today, open_ticket, ring_up
from funding.db import transaction
from funding.orgs.models import Site
from funding.settings import Settings
from funding.stripe_gateway import StripeGateway
from stripe_sandbox.visitor import pay

log = logging.getLogger("funding.demo")

# name, category, price TTC, VAT rate (ACCOUNTING.md §3: 10 % on site, 5,5 % sealed to take away, 20 % alcohol)
MENUS = {
    "thiers": [
        ("Café", "Boissons chaudes", "1,50", "10"), ("Thé ou infusion", "Boissons chaudes", "2,00", "10"),
        ("Chocolat chaud", "Boissons chaudes", "2,50", "10"),
        ("Jus de pomme d'Auvergne (verre)", "Boissons fraîches", "2,50", "10"),
        ("Jus de pomme d'Auvergne (bouteille à emporter)", "Épicerie", "3,20", "5,5"),
        ("Limonade artisanale", "Boissons fraîches", "2,80", "10"),
        ("Bière locale (25 cl)", "Bières et vins", "3,50", "20"), ("Verre de côtes-d'auvergne", "Bières et vins", "3,00", "20"),
        ("Sandwich du jour", "Snacks", "5,50", "10"), ("Part de tarte aux myrtilles", "Snacks", "3,20", "10"),
        ("Paquet de biscuits (emballé)", "Épicerie", "2,20", "5,5"),
    ],
    "courpiere": [
        ("Café", "Boissons chaudes", "1,40", "10"), ("Thé ou infusion", "Boissons chaudes", "1,80", "10"),
        ("Bière locale (25 cl)", "Bières et vins", "3,50", "20"), ("Part de tarte aux myrtilles", "Snacks", "3,00", "10"),
    ],
    "la-monnerie": [
        ("Café", "Boissons chaudes", "1,50", "10"), ("Jus de pomme d'Auvergne (verre)", "Boissons fraîches", "2,50", "10"),
        ("Sandwich du jour", "Snacks", "5,00", "10"),
    ],
    "puy-guillaume": [
        ("Café", "Boissons chaudes", "1,30", "10"), ("Limonade artisanale", "Boissons fraîches", "2,60", "10"),
        ("Bière locale (25 cl)", "Bières et vins", "3,50", "20"),
    ],
}
# Regulars of the bar; Julie, Thomas and Amandine are also the coworking demo's members.
REGULARS = [
    ("julie.fayolle@example.fr", "Julie Fayolle", "thiers"),
    ("thomas.granet@example.fr", "Thomas Granet", "thiers"),
    ("amandine.brun@example.fr", "Amandine Brun", "thiers"),
    ("bastien.giraud@example.fr", "Bastien Giraud", "thiers"),
    ("ines.cousin@example.fr", "Inès Cousin", "courpiere"),
]
WALK_IN = "Client de passage"


async def seed(session, demo) -> None:
    products: dict[str, dict[str, Product]] = {}
    for slug, menu in MENUS.items():
        site = demo.sites.get(slug)
        if site is None:
            continue
        products[slug] = {}
        for n, (name, category, price, rate) in enumerate(menu):
            products[slug][name] = await add_product(session, site, name=name, category=category, price=price,
                                                     vat_rate=rate, position=n)
    members = []
    for email, name, slug in REGULARS:
        user = await session.scalar(select(User).where(User.email == email))
        if user is None:
            user = await create_user(session, email=email, name=name, role="member", org_id=demo.org.id)
        members.append((user, slug))
    staff = demo.users.get("staff")
    by = staff.name if staff else "Accueil"
    rng = random.Random(6)  # noqa: S311  seeded for the same demo data on every run, not for secrets
    week = [demo.today - dt.timedelta(days=back) for back in range(7, 0, -1)]
    for day in week:
        for n, (user, slug) in enumerate(members):
            if rng.random() < 0.25 or slug not in products:
                continue  # not at the bar that day
            site = demo.sites[slug]
            on_sale = list(products[slug].values())
            moment = dt.datetime.combine(day, dt.time(8 + n, rng.randrange(60)))  # UTC: the morning in Thiers
            for product in rng.sample(on_sale, k=rng.choice((1, 1, 2))):
                try:
                    await ring_up(session, site, product_id=product.id, member_id=user.id, limit=5000,
                                         recorded_by=by, now=moment)
                except BarError:  # over the tab limit: that member pays at the counter instead
                    continue
                moment += dt.timedelta(minutes=3)
        if day == week[3]:
            # A mistake at the till, corrected by a cancelling line with its reason.
            user, slug = members[0]
            site = demo.sites[slug]
            wrong = await ring_up(session, site, product_id=products[slug]["Bière locale (25 cl)"].id, member_id=user.id,
                                  limit=5000, recorded_by=by, now=dt.datetime.combine(day, dt.time(15, 2)))
            await cancel(session, site, line_id=wrong.line.id, reason="Erreur de touche : c'était un jus de pomme",
                         recorded_by=by, now=dt.datetime.combine(day, dt.time(15, 3)))
            await ring_up(session, site, product_id=products[slug]["Jus de pomme d'Auvergne (verre)"].id,
                          member_id=user.id, limit=5000, recorded_by=by, now=dt.datetime.combine(day, dt.time(15, 4)))
    for slug in ("thiers", "courpiere"):
        if slug in demo.sites:
            await close_day(session, demo.sites[slug], week[-1], closed_by=f"{by} (clôture du soir)")
    # Today: the bar is open, a few coffees already on the tabs.
    for user, slug in members[3:]:
        if slug in products:
            await ring_up(session, demo.sites[slug], product_id=products[slug]["Café"].id, member_id=user.id, limit=5000,
                          recorded_by=by)


async def _pay(http: httpx.AsyncClient, url: str, name: str, email: str = "client.passage@example.fr") -> bool:
    result = await pay(http, url, name=name, email=email)
    return result.status_code in (302, 303)


async def play(settings: Settings, gw: StripeGateway, sessions) -> None:
    try:
        async with sessions() as session:
            if await session.scalar(select(func.count(Batch.id))) or not await session.scalar(select(func.count(SaleLine.id))):
                return
            sites = {s.slug: s for s in (await session.scalars(select(Site))).all()}
            people = {u.email: u for u in (await session.scalars(select(User).where(
                User.email.in_([email for email, _n, _s in REGULARS])))).all()}
        # The monthly cut-off: the tabs of the week become batches, billed once each — on the next
        # subscription invoice for coworkers, off-session on a saved card, or from the member's area.
        await cut_off(sessions, key=cutoff_key(local_today()))
        await billing_job(sessions, settings, gw)
        async with httpx.AsyncClient(timeout=30, follow_redirects=False) as http:
            bastien = people.get("bastien.giraud@example.fr")
            if bastien is not None:
                async with sessions() as session:
                    due = (await session.scalars(select(Batch).where(Batch.status == BatchStatus.DUE,
                                                                     Batch.member_id == bastien.id))).all()
                for batch in due:  # Bastien has no card on file: he pays from his area
                    url = await start_tab_payment(sessions, gw, bastien.id, batch.id, base_url=settings.base_url)
                    await _pay(http, url, bastien.name, bastien.email)
            # A walk-in at Thiers: a coffee and a slice of tart, paid by scanning the till's QR code.
            site = sites.get("thiers")
            if site is not None:
                async with transaction(sessions) as session:
                    ticket = await open_ticket(session, site, created_by="Louis Bernard")
                    menu = {p.name: p for p in (await session.scalars(select(Product).where(Product.site_id == site.id))).all()}
                    for name in ("Café", "Part de tarte aux myrtilles"):
                        await ring_up(session, site, product_id=menu[name].id, ticket_id=ticket.id, limit=5000,
                                      recorded_by="Louis Bernard")
                _payment, url = await start_walk_in_payment(sessions, gw, site, ticket.id, base_url=settings.base_url)
                await _pay(http, url, WALK_IN)
        log.info("demo: bar tabs cut off and settled through the sandbox")
    except Exception:  # the demo must start even if this goes wrong
        log.exception("demo: could not play the bar")
