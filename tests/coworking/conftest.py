"""Coworking fixtures: a world with plans on sale (their Stripe prices known), members,
and a respx fake of Stripe Billing."""

from __future__ import annotations

import json
from dataclasses import dataclass

import httpx
import pytest
import respx
from sqlalchemy import select

from funding.coworking.members import check_details, enrol
from funding.coworking.models import Member, Plan, PlanPrice
from funding.coworking.plans import PlanSpec, price_ttc, save_plan
from funding.db import transaction
from funding.orgs.models import Site
from funding.settings import load_settings
from funding.stripe_gateway import StripeGateway
from tests.conftest import TEST_SEAL_KEY
from tests.coworking.fakes import BillingStripe, price
from tests.stripe_objects import BASE, sid
from webhooks.inbox import store

SECRET = "whsec_test_secret_for_coworking"


@pytest.fixture
def stripe_settings(database_url):
    return load_settings({}, FUNDING_ENV="test", LEDGER_SEAL_KEY=TEST_SEAL_KEY, DATABASE_URL=database_url, SECRET_KEY="test-secret-key-0123456789",
                         BASE_URL="http://testserver", STRIPE_SECRET_KEY="sk_test_unit", STRIPE_WEBHOOK_SECRET=SECRET,
                         STRIPE_API_BASE=BASE)


@pytest.fixture
def fake():
    with respx.mock(assert_all_called=False) as router:
        yield BillingStripe(router)


@pytest.fixture
async def gw(stripe_settings, fake):
    async def no_sleep(_):
        return None

    gateway = StripeGateway(stripe_settings, sleep=no_sleep, timeout=2)
    yield gateway
    await gateway.aclose()


@dataclass
class Catalogue:
    plans: dict[str, Plan]
    prices: dict[str, dict]  # Stripe price objects by plan code

    def price_id(self, code: str) -> str:
        return self.prices[code]["id"]


PLANS = [
    PlanSpec("flex", "Poste nomade", "workspace", "150,00", "20", "706", "month", position=1),
    PlanSpec("fixe", "Poste fixe", "workspace", "220,00", "20", "706", "month", position=2),
    PlanSpec("bureau", "Bureau privatif", "workspace", "390,00", "20", "706", "month", company_only=True, position=3),
    PlanSpec("adhesion", "Adhésion annuelle", "membership", "30,00", "0", "7562", "year", position=4),
    PlanSpec("carnet-10", "Carnet de 10 journées", "pass", "150,00", "20", "706", pass_days=10, position=5),
]


@pytest.fixture
async def catalogue(sessions, world, fake) -> Catalogue:
    return await make_catalogue(sessions, world, fake)


async def make_catalogue(sessions, world, fake) -> Catalogue:
    """The central site's plans, with a Stripe price each (as after `funding plans sync`)."""
    plans, prices = {}, {}
    async with transaction(sessions) as session:
        site = await session.get(Site, world.site_id)
        for seq, spec in enumerate(PLANS, start=1):
            plan = await save_plan(session, site, spec)
            plan.stripe_product_id = sid("prod")
            amount = price_ttc(plan.price_ht, plan.vat_rate)
            obj = price(price_id=sid("price"), amount=amount, product=plan.stripe_product_id, interval=plan.interval)
            session.add(PlanPrice(plan_id=plan.id, seq=1, amount=amount, price_ht=plan.price_ht, vat_rate=plan.vat_rate,
                                  currency="EUR", interval=plan.interval, stripe_price_id=obj["id"], status="active"))
            fake.add(obj)
            plans[spec.code], prices[spec.code] = plan, obj
    return Catalogue(plans, prices)


async def new_member(sessions, world, *, name: str = "Julie Fayolle", email: str | None = None, company: str = "",
                     siren: str = "", vat: str = "", customer: str | None = None) -> Member:
    email = email or f"{name.split()[0].lower()}.{sid('x')[-5:].lower()}@example.org"
    details = check_details(name=name, email=email, company_name=company, siren=siren, vat_number=vat)
    async with transaction(sessions) as session:
        site = await session.get(Site, world.site_id)
        member, _ = await enrol(session, site, details)
        member.stripe_customer_id = customer or sid("cus")
    return member


@pytest.fixture
async def member(sessions, world, catalogue) -> Member:
    return await new_member(sessions, world)


def sub_metadata(member: Member, plan: Plan) -> dict:
    return {"purpose": "coworking", "member_id": str(member.id), "site_id": str(plan.site_id), "org_id": str(member.org_id),
            "plan_id": str(plan.id), "kind": plan.kind, "checkout_id": "1"}


async def deliver(engine, *events: dict) -> None:
    for evt in events:
        await store(engine, evt, json.dumps(evt))


async def reload(sessions, model, **where):
    async with sessions() as session:
        query = select(model)
        for key, value in where.items():
            query = query.where(getattr(model, key) == value)
        return (await session.scalars(query)).all()


@pytest.fixture
async def app_client(stripe_settings, fake):
    """The app (talking to the fake Stripe); events are processed by the test."""
    from funding.app import create_app

    app = create_app(stripe_settings, process_events=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", follow_redirects=False) as client:
            client.app = app
            yield client
