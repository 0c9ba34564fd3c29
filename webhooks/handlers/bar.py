"""The bar's tab batches, confirmed by Stripe.

Each handler fetches the current object (the event is only a notification) and moves the
batch it names (metadata ``bar_batch_id``) forwards only, by conditional UPDATEs: a
duplicate, a replay or an older event arriving late changes nothing. The money itself is
booked by the charges handlers from balance transactions (purposes ``bar_tab``,
``bar_sale``, or coworking's ``invoice`` for a batch billed on a subscription invoice).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession

from funding.bar.settlement import record_invoice, record_payment_intent
from funding.ledger.service import EntryDraft
from funding.stripe_gateway import StripeGateway, StripeRefused
from webhooks.events import Event, StripeDict
from webhooks.handlers import Handler, Prepared


async def _fetch(gw: StripeGateway, resource: str, event: Event) -> Prepared:
    obj = event["data"]["object"]
    if resource == "payment_intents" and (obj.get("metadata") or {}).get("purpose") != "bar_tab":
        return Prepared()  # not one of ours: nothing to fetch
    try:
        # A PaymentIntent with its charge: a SEPA debit's day (expected_debit_date) is on it.
        expand = ["latest_charge"] if resource == "payment_intents" else None
        return Prepared(objects=[await gw.retrieve(resource, obj["id"], expand=expand)])
    except StripeRefused as exc:
        if exc.http_status == 404:
            return Prepared()
        raise


# invoice.finalized / paid / voided / marked_uncollectible: which batch a subscription
# invoice carries (its lines' metadata), billed then paid with it, or due again if voided.
async def prepare_invoice(gw: StripeGateway, event: Event) -> Prepared:
    prepared = await _fetch(gw, "invoices", event)
    for invoice in prepared.objects:
        lines = invoice.get("lines") or {}
        if lines.get("has_more"):
            data = list(lines.get("data") or [])
            async for line in _lines_after(gw, invoice["id"], data[-1]["id"]):
                data.append(line)
            invoice["lines"] = {**lines, "data": data, "has_more": False}
    return prepared


async def _lines_after(gw: StripeGateway, invoice_id: str, after: str) -> AsyncIterator[StripeDict]:
    while True:
        page = await gw.call("invoices.line_items", "list", invoice_id, params={"limit": 100, "starting_after": after})
        for line in page["data"]:
            yield line
        if not page.get("has_more") or not page["data"]:
            return
        after = page["data"][-1]["id"]


async def apply_invoice(session: AsyncSession, event: Event, prepared: Prepared) -> list[EntryDraft]:
    for invoice in prepared.objects:
        await record_invoice(session, invoice)
    return []


# payment_intent.*: an off-session charge of a batch, or the member's own Checkout payment.
async def prepare_payment_intent(gw: StripeGateway, event: Event) -> Prepared:
    return await _fetch(gw, "payment_intents", event)


async def apply_payment_intent(session: AsyncSession, event: Event, prepared: Prepared) -> list[EntryDraft]:
    for pi in prepared.objects:
        await record_payment_intent(session, pi)
    return []


INVOICE = Handler(prepare_invoice, apply_invoice)
PAYMENT_INTENT = Handler(prepare_payment_intent, apply_payment_intent)
HANDLERS = {
    **{t: INVOICE for t in ("invoice.finalized", "invoice.paid", "invoice.voided", "invoice.marked_uncollectible",
                            "invoice.payment_failed")},
    **{t: PAYMENT_INTENT for t in ("payment_intent.succeeded", "payment_intent.processing",
                                   "payment_intent.payment_failed", "payment_intent.requires_action",
                                   "payment_intent.canceled")},
}
