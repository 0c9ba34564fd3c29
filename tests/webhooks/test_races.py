"""The failures of STRIPE.md that involve two paths or a crash between Stripe and our commit."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from sqlalchemy import func, select

from funding.db import transaction
from funding.ledger.models import Entry
from funding.mail.models import Email
from funding.payments.calls import resolve_unknown
from funding.payments.models import Payment, StripeRequest
from funding.payments.service import settle_session, start_checkout
from funding.settings import load_settings
from tests.support.db import TEST_SEAL_KEY
from tests.support.stripe_objects import BASE, event, sign
from tests.support.webhooks import deliver, entries, make_payment, paid_donation, workers_on
from webhooks.processing import drain


async def test_a_test_mode_event_at_a_live_endpoint_is_rejected(database_url):
    from funding.app import create_app

    live = load_settings({}, FUNDING_ENV="test", LEDGER_SEAL_KEY=TEST_SEAL_KEY, DATABASE_URL=database_url, SECRET_KEY="k" * 20,
                         STRIPE_SECRET_KEY="sk_live_x", STRIPE_WEBHOOK_SECRET="whsec_live", BASE_URL="https://x.example")
    app = create_app(live, process_events=False)
    body = json.dumps(event("charge.succeeded", {"id": "ch_1", "object": "charge"}, livemode=False)).encode()
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://x.example") as client:
        response = await client.post("/webhooks/stripe", content=body, headers={"stripe-signature": sign(body, "whsec_live")})
    assert response.status_code == 400 and "livemode" in response.json()["error"]


async def test_a_crash_after_stripe_created_the_session_is_completed_through_our_metadata(
        engine, sessions, world, stripe_settings, gw, fake_stripe, monkeypatch):
    created = {}
    respx = fake_stripe.router

    def create_session(request: httpx.Request) -> httpx.Response:
        form = dict(httpx.QueryParams(request.content.decode()))
        key = request.headers["idempotency-key"]
        if key not in created:  # Stripe's idempotency: one object per key
            created[key] = {"id": f"cs_test_crash{len(created)}", "object": "checkout.session", "url": "https://pay",
                            "metadata": {k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")}}
        return httpx.Response(200, json=created[key])

    respx.post(f"{BASE}/v1/checkout/sessions").mock(side_effect=create_session)

    async def crash(*args, **kwargs):
        raise RuntimeError("the process died before recording Stripe's answer")

    monkeypatch.setattr("funding.payments.calls._settle", crash)
    with pytest.raises(RuntimeError):
        await start_checkout(sessions, gw, purpose="donation", org_id=world.org_id, site_id=world.site_id, amount=5000,
                             currency="EUR", description="Don", success_url="http://x/ok", cancel_url="http://x/no",
                             email="ana@example.org", name="Ana")
    monkeypatch.undo()
    async with sessions() as session:
        payment = await session.scalar(select(Payment))
        request = await session.scalar(select(StripeRequest))
    assert payment.status == "created" and payment.checkout_session_id is None and request.status == "pending"

    # The donor paid anyway: the webhook finds the payment by the id we put in metadata.
    (session_id,) = [s["id"] for s in created.values()]
    cs, _pi, ch, _txn = paid_donation(fake_stripe, world, payment)
    fake_stripe.add({**cs, "id": session_id})
    await deliver(engine, event("checkout.session.completed", {**cs, "id": session_id}), event("charge.succeeded", ch))
    await drain(sessions, gw)
    async with sessions() as session:
        payment = await session.get(Payment, payment.id)
    assert payment.status == "paid" and payment.checkout_session_id == session_id
    assert len(await entries(sessions)) == 1

    # The sweep settles the stuck request by asking again with the same key: still one session.
    async with transaction(sessions) as session:
        (await session.scalar(select(StripeRequest))).updated_at = payment.created_at.replace(year=2000)
    await resolve_unknown(sessions, stripe_settings, gw)
    async with sessions() as session:
        request = await session.scalar(select(StripeRequest))
    assert request.status == "succeeded" and request.stripe_id == session_id and len(created) == 1


@pytest.mark.postgres_only
async def test_the_webhook_racing_the_return_page_settles_once(pg_url, fake_stripe):
    """The donor's browser returns while the webhook is being processed: one payment, one email, one entry."""
    from funding.payments import books
    from tests.support.world import make_world

    async with workers_on(pg_url) as workers:
        engine, sessions, (gw,) = workers.engine, workers.sessions, workers.gateways
        world = await make_world(sessions)
        for _ in range(5):
            payment = await make_payment(sessions, world)
            cs, _pi, _ch, txn = paid_donation(fake_stripe, world, payment)
            await deliver(engine, event("checkout.session.completed", cs))

            async def return_page(cs, txn):
                async with transaction(sessions) as session:
                    await settle_session(session, cs)
                await books.ingest(sessions, gw, [txn["id"]])

            await asyncio.gather(drain(sessions, gw), return_page(cs, txn), return_page(cs, txn))
        async with sessions() as session:
            assert await session.scalar(select(func.count(Entry.id))) == 5
            assert await session.scalar(select(func.count(Email.id))) == 5
            assert set((await session.scalars(select(Payment.status))).all()) == {"paid"}
