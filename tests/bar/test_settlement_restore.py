"""Bar tab settlements ask Stripe first: what a lost local state (a restore) already billed is
adopted, never billed again (issue 19)."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from funding.bar import service  # noqa: F401  (registers the purposes and paid hooks)
from funding.bar.models import Batch
from funding.bar.settlement import bill
from funding.payments.models import StripeRequest
from tests.support.bar import a_batch, coworker, make_bar
from tests.support.stripe_objects import BASE, payment_intent


def ours(batch: Batch, **extra) -> dict:
    return {"purpose": "bar_tab", "bar_batch_id": str(batch.id), "site_id": str(batch.site_id), "org_id": str(batch.org_id),
            "user_id": str(batch.member_id), "entrelab_installation": "entrelab", **extra}


async def test_a_tab_already_charged_at_stripe_is_adopted_not_charged_again(sessions, world, gw, fake_stripe):
    bar = await make_bar(sessions, world)
    await coworker(sessions, world, bar.members[0])
    batch = await a_batch(sessions, world, bar)
    fake_stripe.router.get(f"{BASE}/v1/customers/cus_bar1").mock(return_value=httpx.Response(
        200, json={"id": "cus_bar1", "object": "customer", "invoice_settings": {"default_payment_method": {
            "id": "pm_card_1", "object": "payment_method", "type": "card"}}}))  # expanded, as asked
    charged = {**payment_intent(amount=batch.amount, metadata=ours(batch, entrelab_ref=f"bar-batch:{batch.id}")),
               "customer": "cus_bar1"}
    fake_stripe.add(charged)  # charged before the backup was restored; Stripe forgot the key since
    create = fake_stripe.router.post(f"{BASE}/v1/payment_intents").mock(return_value=httpx.Response(500))
    assert await bill(sessions, gw, batch.id) == "paid"
    assert not create.called
    async with sessions() as session:
        request = await session.scalar(select(StripeRequest))
    assert (request.ref, request.status, request.stripe_id) == (f"bar-batch:{batch.id}", "succeeded", charged["id"])


async def test_a_subscriber_s_items_already_at_stripe_are_adopted_and_only_the_missing_one_is_made(sessions, world, gw, fake_stripe):
    bar = await make_bar(sessions, world)
    await coworker(sessions, world, bar.members[0], subscription=True)
    batch = await a_batch(sessions, world, bar)
    fake_stripe.lists["invoiceitems"] = [
        {"id": "ii_kept", "object": "invoiceitem", "customer": "cus_bar1", "amount": 700,
         "metadata": ours(batch, vat_rate="100", entrelab_ref=f"bar-batch:{batch.id}:vat-100")},
        {"id": "ii_other", "object": "invoiceitem", "customer": "cus_bar1", "amount": 450,  # another database's
         "metadata": ours(batch, vat_rate="200", entrelab_installation="entrelab-elsewhere")},
    ]
    route = fake_stripe.router.post(f"{BASE}/v1/invoiceitems").mock(
        return_value=httpx.Response(200, json={"id": "ii_new", "object": "invoiceitem"}))
    assert await bill(sessions, gw, batch.id) == "billed"
    assert [c.request.headers["idempotency-key"] for c in route.calls] == [f"entrelab-bar-batch-{batch.id}-vat-200-invoice_items-1"]
    async with sessions() as session:
        rows = {r.ref: r.stripe_id for r in (await session.scalars(select(StripeRequest))).all()}
    assert rows[f"bar-batch:{batch.id}:vat-100"] == "ii_kept" and rows[f"bar-batch:{batch.id}:vat-200"] == "ii_new"
