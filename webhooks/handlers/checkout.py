"""Checkout sessions: a payment settles its record (once) and is booked from its charge."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from funding.ledger.service import EntryDraft
from funding.payments import books
from funding.payments.service import settle_session
from funding.stripe_gateway import StripeGateway
from webhooks.events import Event
from webhooks.handlers import Handler, Prepared
from webhooks.handlers.charges import charge_contexts


async def prepare(gw: StripeGateway, event: Event) -> Prepared:
    checkout = await gw.retrieve("checkout.sessions", event["data"]["object"]["id"], expand=["payment_intent.latest_charge"])
    pi = checkout.get("payment_intent")
    charge = pi.get("latest_charge") if isinstance(pi, dict) else None
    contexts = await charge_contexts(gw, charge) if isinstance(charge, dict) else []
    return Prepared(contexts=contexts, objects=[checkout])


async def apply(session: AsyncSession, event: Event, prepared: Prepared) -> list[EntryDraft]:
    await settle_session(session, prepared.objects[0])
    return await books.drafts_for(session, prepared.contexts)


CHECKOUT = Handler(prepare, apply)
HANDLERS = {t: CHECKOUT for t in ("checkout.session.completed", "checkout.session.async_payment_succeeded",
                                  "checkout.session.async_payment_failed", "checkout.session.expired")}
