"""Subscriptions and invoices: mirrored from Stripe's current state, never moved backwards.

An older ``customer.subscription.updated`` arriving after ``.deleted`` cannot revive the
subscription: we hold the state fetched from Stripe, versioned, and only a newer one
replaces it. (What a subscription means for members comes with the coworking issue.)
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from funding.ledger.service import EntryDraft
from funding.payments import mirror
from funding.stripe_gateway import StripeGateway, StripeRefused
from webhooks.events import Event
from webhooks.handlers import Handler, Prepared, version

RESOURCES = {"subscription": "subscriptions", "invoice": "invoices", "customer": "customers",
             "setup_intent": "setup_intents"}


async def prepare(gw: StripeGateway, event: Event) -> Prepared:
    obj = event["data"]["object"]
    resource = RESOURCES.get(obj.get("object", ""))
    if resource is None:
        return Prepared()
    try:
        return Prepared(objects=[await gw.retrieve(resource, obj["id"])])
    except StripeRefused as exc:
        if exc.http_status == 404:  # gone from Stripe: the payload is all there is
            return Prepared()
        raise


async def apply(session: AsyncSession, event: Event, prepared: Prepared) -> list[EntryDraft]:
    if prepared.objects:
        await mirror.apply_state(session, prepared.objects[0], version(event, prepared))
    else:
        obj = event["data"]["object"]
        if isinstance(obj, dict) and obj.get("id"):
            await mirror.apply_state(session, obj, int(event.get("created") or 0))
    return []


MIRROR = Handler(prepare, apply)
HANDLERS = {t: MIRROR for t in (
    "customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted",
    "customer.subscription.paused", "customer.subscription.resumed", "customer.subscription.trial_will_end",
    "invoice.created", "invoice.finalized", "invoice.paid", "invoice.payment_failed", "invoice.payment_action_required",
    "invoice.voided", "invoice.marked_uncollectible", "invoice.updated",
    "setup_intent.succeeded", "setup_intent.setup_failed", "customer.created", "customer.updated",
)}
