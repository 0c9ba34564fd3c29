"""Unknown outcomes always end (issue 19): the sandbox drops the answer of each kind of creating
call the product makes (``error_500_after``: Stripe did the work, then answered 500 and saved
that answer under the key, as Stripe does); the sweep finds each object again by our
metadata — Search API or a list filtered as Stripe allows — and never creates a second one;
what it cannot look up is raised to staff, with what to check, and left alone."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest
from sqlalchemy import select, update

from funding.db import utcnow
from funding.payments.calls import create_once, resolve_unknown, staff_resolve
from funding.payments.models import StripeRequest
from funding.settings import load_settings
from funding.stripe_gateway import StripeGateway, StripeUnknown
from stripe_sandbox import Sandbox, create_sandbox_app

BASE = "http://stripe-sandbox.test"
RETURN = "https://entrelab.example/retour"


@pytest.fixture
def sandbox() -> Sandbox:
    return Sandbox(public_base=BASE)


@pytest.fixture
async def sgw(sandbox):
    settings = load_settings({"FUNDING_ENV": "test", "STRIPE_SECRET_KEY": "sk_test_sweep", "STRIPE_WEBHOOK_SECRET": "whsec_x",
                              "STRIPE_API_BASE": BASE, "SECRET_KEY": "k" * 20})

    async def no_sleep(_):
        return None

    gw = StripeGateway(settings, sleep=no_sleep, timeout=5)
    gw.http._client_async = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_sandbox_app(sandbox)))
    yield gw
    await gw.aclose()


KINDS = ["customers", "payment_intents", "setup_intents", "checkout.sessions", "products", "prices", "tax_rates",
         "invoice_items", "refunds", "credit_notes", "billing_portal.sessions"]
SANDBOX_KIND = {"customers": "customer", "payment_intents": "payment_intent", "setup_intents": "setup_intent",
                "checkout.sessions": "checkout.session", "products": "product", "prices": "price", "tax_rates": "tax_rate",
                "invoice_items": "invoiceitem", "refunds": "refund", "credit_notes": "credit_note"}


async def _params(gw: StripeGateway, resource: str, customer: str) -> dict:
    """What the product sends for each kind (the objects it needs made beforehand, answered normally)."""
    if resource == "customers":
        return {"email": "camille@example.org", "name": "Camille Martin"}
    if resource == "payment_intents":
        return {"amount": 2500, "currency": "eur", "customer": customer, "payment_method": "pm_card_visa", "off_session": True,
                "confirm": True, "description": "Ardoise du bar"}
    if resource == "setup_intents":
        return {"customer": customer, "payment_method": "pm_card_visa", "confirm": True, "usage": "off_session"}
    if resource == "checkout.sessions":
        return {"mode": "payment", "customer": customer, "success_url": RETURN, "cancel_url": RETURN,
                "line_items": [{"quantity": 1, "price_data": {"currency": "eur", "unit_amount": 1000,
                                                              "product_data": {"name": "Pass journée"}}}]}
    if resource == "products":
        return {"name": "Poste nomade"}
    if resource == "prices":
        product = await gw.create("products", {"name": "Poste fixe"}, key="setup-product")
        return {"product": product["id"], "unit_amount": 15000, "currency": "eur", "recurring": {"interval": "month"}}
    if resource == "tax_rates":
        return {"display_name": "TVA", "percentage": 20, "inclusive": True, "country": "FR"}
    if resource == "invoice_items":
        return {"customer": customer, "amount": 450, "currency": "eur", "description": "Ardoise — TVA 20 %"}
    if resource == "refunds":
        pi = await gw.create("payment_intents", {"amount": 3000, "currency": "eur", "customer": customer,
                                                 "payment_method": "pm_card_visa", "confirm": True, "off_session": True}, key="setup-pi")
        return {"payment_intent": pi["id"], "amount": 1000}
    if resource == "credit_notes":
        await gw.create("invoice_items", {"customer": customer, "amount": 5000, "currency": "eur"}, key="setup-ii")
        invoice = await gw.create("invoices", {"customer": customer, "collection_method": "send_invoice", "days_until_due": 30,
                                               "pending_invoice_items_behavior": "include"}, key="setup-in")
        await gw.call("invoices", "finalize_invoice", invoice["id"])
        return {"invoice": invoice["id"], "amount": 1000}
    return {"customer": customer, "return_url": RETURN}  # billing_portal.sessions


async def test_the_answer_of_each_kind_of_creating_call_dropped_the_sweep_ends_every_one_without_a_second_object(
        sessions, settings, sgw, sandbox):
    customer = (await sgw.create("customers", {"email": "base@example.org"}, key="setup-customer"))["id"]
    for resource in KINDS:
        params = await _params(sgw, resource, customer)
        sandbox.inject_fault("POST", "/v1/" + resource.replace(".", "/").replace("invoice_items", "invoiceitems"), "error_500_after")
        with pytest.raises(StripeUnknown) as unknown:
            await create_once(sessions, sgw, ref=f"sweep:{resource}", resource=resource, params=params,
                              tag=resource != "billing_portal.sessions")
        assert unknown.value.final, resource  # Stripe-Should-Retry: false — the 500 is saved, not retried
    # A SetupIntent made without a customer: nothing to list it by.
    sandbox.inject_fault("POST", "/v1/setup_intents", "error_500_after")
    with pytest.raises(StripeUnknown):
        await create_once(sessions, sgw, ref="sweep:lonely", resource="setup_intents",
                          params={"payment_method": "pm_card_visa", "confirm": True, "usage": "off_session"})
    made = {kind: len(list(sandbox.store.all(SANDBOX_KIND[kind]))) for kind in SANDBOX_KIND}

    assert await resolve_unknown(sessions, settings, sgw, search_lag=dt.timedelta(0)) == len(KINDS) + 1
    assert await resolve_unknown(sessions, settings, sgw, search_lag=dt.timedelta(0)) == 0  # every one ended
    async with sessions() as session:
        rows = {r.ref: r for r in (await session.scalars(select(StripeRequest).where(StripeRequest.ref.like("sweep:%")))).all()}
    for resource in KINDS:
        row = rows[f"sweep:{resource}"]
        if resource == "billing_portal.sessions":  # a link nobody received: given up, never made again
            assert row.status == "failed" and row.raised_at is None, resource
            continue
        assert row.status == "succeeded" and row.stripe_id, resource
        obj = sandbox.store.get(SANDBOX_KIND[resource], row.stripe_id)
        assert obj is not None and obj["metadata"]["entrelab_ref"] == f"sweep:{resource}", resource
    lonely = rows["sweep:lonely"]
    assert lonely.status == "unknown" and lonely.raised_at is not None
    assert "entrelab_ref = sweep:lonely" in lonely.error and lonely.idempotency_key in lonely.error
    assert {kind: len(list(sandbox.store.all(SANDBOX_KIND[kind]))) for kind in SANDBOX_KIND} == made  # nothing made twice
    # Later rounds leave what was raised alone, and a job asking again is told so rather than creating.
    with pytest.raises(StripeUnknown, match="raised to staff"):
        await create_once(sessions, sgw, ref="sweep:lonely", resource="setup_intents",
                          params={"payment_method": "pm_card_visa", "confirm": True, "usage": "off_session"})
    assert len(list(sandbox.store.all("setup_intent"))) == made["setup_intents"]
    # Staff checked at Stripe: another object is not it; nothing there → made now, once.
    assert f"funding stripe resolve {lonely.id} --absent" in lonely.error
    with pytest.raises(ValueError, match="not what sweep:lonely asked for"):
        await staff_resolve(sessions, sgw, lonely.id, stripe_id=rows["sweep:setup_intents"].stripe_id)
    assert await staff_resolve(sessions, sgw, lonely.id) == "succeeded"
    with pytest.raises(ValueError, match="not raised"):
        await staff_resolve(sessions, sgw, lonely.id)
    async with sessions() as session:
        latest = await session.scalar(select(StripeRequest).where(StripeRequest.ref == "sweep:lonely")
                                      .order_by(StripeRequest.attempt.desc()).limit(1))
    assert (latest.attempt, latest.status) == (2, "succeeded")
    assert len(list(sandbox.store.all("setup_intent"))) == made["setup_intents"] + 1


async def test_an_answer_that_never_comes_is_looked_up_then_made_once_with_the_same_key(sessions, settings, sgw, sandbox):
    customer = (await sgw.create("customers", {"email": "base@example.org"}, key="setup-customer"))["id"]
    sandbox.inject_fault("POST", "/v1/invoiceitems", "error_500", count=4)  # nothing done, every attempt
    with pytest.raises(StripeUnknown) as unknown:
        await create_once(sessions, sgw, ref="bar-batch:7:vat-200", resource="invoice_items",
                          params={"customer": customer, "amount": 450, "currency": "eur"})
    assert not unknown.value.final
    assert await resolve_unknown(sessions, settings, sgw, search_lag=dt.timedelta(0)) == 1
    async with sessions() as session:
        row = await session.scalar(select(StripeRequest).where(StripeRequest.ref == "bar-batch:7:vat-200"))
    assert row.status == "succeeded" and [i["id"] for i in sandbox.store.all("invoiceitem")] == [row.stripe_id]


async def test_stripe_unreachable_for_a_day_raises_the_request_to_staff(sessions, settings, sgw, sandbox, world):
    sandbox.inject_fault("POST", "/v1/payment_intents", "error_500", count=4)
    with pytest.raises(StripeUnknown):
        await create_once(sessions, sgw, ref="pledge:3:charge:1", resource="payment_intents",
                          params={"amount": 2500, "currency": "eur", "payment_method": "pm_card_visa", "confirm": True})
    sandbox.inject_fault("GET", "/v1/payment_intents/search", "error_500", count=100)
    assert await resolve_unknown(sessions, settings, sgw) == 0  # not yet: it tries again next round
    async with sessions() as session:
        await session.execute(update(StripeRequest).values(created_at=utcnow() - dt.timedelta(hours=25)))
        await session.commit()
    assert await resolve_unknown(sessions, settings, sgw) == 1
    async with sessions() as session:
        row = await session.scalar(select(StripeRequest))
    assert row.status == "unknown" and row.raised_at is not None and "injoignable" in row.error
    assert json.loads(row.params)["amount"] == 2500 and list(sandbox.store.all("payment_intent")) == []
    # Where staff see it: the back office's Stripe page, with what to check.
    from funding.app import create_app
    from tests.support.web import login_as, text_of

    app = create_app(settings.with_(stripe_secret_key="sk_test_x", stripe_api_base="http://stripe.test"), process_events=False)
    async with app.router.lifespan_context(app), \
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        await login_as(client, sessions, settings, world.users["staff"])
        page = text_of((await client.get("/admin/stripe")).text)
    assert "À vérifier par le personnel" in page and "pledge:3:charge:1" in page and row.idempotency_key in page
