"""Every page of the demo, as each persona sees it: the demo's data seeded into a live server's
database, its people logged in by a magic link, and the pages found by following the links
from each persona's landing pages (GET only; downloads, logout and the sandbox left out)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select

from funding.auth.models import User
from funding.db import transaction
from tests.support.e2e import db_call
from tests.support.web import csrf_of

PERSONAS = {  # persona: (the demo's address, where they land first)
    "anonymous": (None, ("/", "/campagnes", "/soutenir", "/coworking", "/login")),
    "staff": ("louis.bernard@entre-lab.fr", ("/", "/admin", "/bar")),
    "admin": ("camille.martin@entre-lab.fr", ("/", "/admin")),
    "accountant": ("sophie.roux@cabinet-dore-expertise.fr", ("/", "/admin")),
    "member": ("lea.garnier@example.fr", ("/", "/membre", "/mes-contributions")),
}
SKIP = re.compile(r"^/(_sandbox|dev/|logout|static/)|\.(csv|pdf|json|txt|zip|xml|beancount|journal|png|jpe?g|webp|svg)(\?|$)"
                  r"|/(telecharger|download|export|pdf|recu\.pdf)(/|\?|$)|/deconnexion")
HREF = re.compile(r'href="(/[^"#]*)"')


def seed_demo(settings) -> None:
    from funding.demo.seed import seed

    async def go(sessions):
        async with transaction(sessions) as session:
            await seed(session)
            await _member(session)

    db_call(settings, go)


async def _member(session) -> None:
    """A desk member, as the demo's play makes them through Stripe (the crawl plays nothing): an
    active subscription, a paid invoice and an open bar tab, for the member persona's pages."""
    from funding.auth.service import create_user
    from funding.bar.models import Product
    from funding.bar.till import ring_up
    from funding.coworking.models import Invoice, Member, Plan, Subscription
    from funding.db import utcnow
    from funding.orgs.models import Site

    site = await session.scalar(select(Site).where(Site.slug == "thiers"))
    plan = await session.scalar(select(Plan).where(Plan.site_id == site.id, Plan.code == "flex"))
    user = await create_user(session, email=PERSONAS["member"][0], name="Léa Garnier", role="member", org_id=site.org_id)
    member = Member(user_id=user.id, site_id=site.id, org_id=site.org_id, stripe_customer_id=None)
    session.add(member)
    await session.flush()
    now = utcnow()
    session.add(Subscription(member_id=member.id, site_id=site.id, plan_id=plan.id, stripe_subscription_id="sub_crawl_lea",
                             status="active", started_at=now, version=1))
    session.add(Invoice(member_id=member.id, site_id=site.id, stripe_invoice_id="in_crawl_lea", number="CRAWL-0001",
                        status="paid", currency="EUR", total=18000, amount_due=18000, amount_paid=18000, amount_remaining=0,
                        issued_at=now, version=1))
    product = await session.scalar(select(Product).where(Product.site_id == site.id).limit(1))
    if product is not None:
        await ring_up(session, site, product_id=product.id, member_id=user.id, limit=5000, recorded_by="Louis Bernard")


def logged_in(server, email: str | None, client: httpx.Client) -> None:
    if email is None:
        return
    from funding.auth.service import issue_link

    async def link(sessions):
        async with transaction(sessions) as session:
            user = await session.scalar(select(User).where(User.email == email))
            return await issue_link(session, user, server.settings)

    path = db_call(server.settings, link).replace(server.settings.base_url, "")
    page = client.get(path)
    assert client.post(path, data={"csrf_token": csrf_of(page.text)}, follow_redirects=False).status_code == 303


def _key(path: str) -> str:
    """Pages that differ only by their query or their row id count once (page 2, entry 17…)."""
    parts = urlsplit(path)
    return re.sub(r"/\d+(?=/|$)", "/N", parts.path)


def crawl(client: httpx.Client, starts, *, most: int = 120) -> Iterator[tuple[str, httpx.Response]]:
    seen: set[str] = set()
    todo = list(starts)
    while todo and len(seen) < most:
        path = todo.pop(0)
        key = _key(path)
        if key in seen or SKIP.search(path):
            continue
        seen.add(key)
        response = client.get(path)
        if "text/html" not in response.headers.get("content-type", ""):
            continue
        yield path, response
        todo += [html.unescape(href) for href in HREF.findall(response.text)]


def visible_text(page: str) -> str:
    page = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", page)
    page = re.sub(r"(?s)<[^>]+>", " ", page)
    return re.sub(r"\s+", " ", html.unescape(page))
