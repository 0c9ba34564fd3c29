"""Browser tests' shared steps: plans prepared in the database and Stripe, a member joined over HTTP."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from funding.coworking.models import Plan, Subscription
from funding.coworking.plans import PlanSpec, save_plan, sync_plans
from funding.db import create_engine, transaction
from funding.orgs.models import Site
from funding.stripe_gateway import StripeGateway
from tests.support.db import run_async, sealed_sessions
from tests.support.e2e import confirm_join, pay_on_hosted_page
from tests.support.web import csrf_of
from tests.support.world import make_world


def prepare(settings):
    async def go():
        engine = create_engine(settings.database_url)
        sessions = sealed_sessions(engine)
        gw = StripeGateway(settings)
        try:
            world = await make_world(sessions)
            async with transaction(sessions) as session:
                site = await session.get(Site, world.site_id)
                await save_plan(session, site, PlanSpec("flex", "Poste nomade", "workspace", "150,00", "20", "706", "month"))
                await save_plan(session, site, PlanSpec("fixe", "Poste fixe", "workspace", "220,00", "20", "706", "month"))
            await sync_plans(sessions, gw)
            return world
        finally:
            await gw.aclose()
            await engine.dispose()

    return run_async(go)


def _subscription(settings):
    async def go():
        engine = create_engine(settings.database_url)
        try:
            async with sealed_sessions(engine)() as session:
                row = await session.scalar(select(Subscription))
                plan = await session.get(Plan, row.plan_id) if row else None
                return row, plan
        finally:
            await engine.dispose()

    return run_async(go)


def join(server, world, email_address: str) -> None:
    """Joining is tested elsewhere: here it is done over HTTP, paying on the sandbox's page."""
    with httpx.Client(base_url=server.url, follow_redirects=False, timeout=30) as client:
        token = csrf_of(client.get("/login").text)
        response = confirm_join(server, client, f"/coworking/{world.site_slug}/adherer/flex",
                                {"csrf_token": token, "name": "Julie Fayolle", "email": email_address})
        paid = pay_on_hosted_page(client, response.headers["location"], "4242 4242 4242 4242", name="Julie Fayolle", email=None)
        assert "est actif" in client.get(paid.headers["location"]).text


