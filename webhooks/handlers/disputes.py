"""Disputes: funds withdrawn (with the dispute fee), reinstated if won; posted once each."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from funding.ledger.service import EntryDraft
from funding.payments import books, mirror
from funding.stripe_gateway import StripeGateway
from webhooks.events import Event
from webhooks.handlers import Handler, Prepared, version


async def prepare(gw: StripeGateway, event: Event) -> Prepared:
    dispute = await gw.retrieve("disputes", event["data"]["object"]["id"])
    txns = [bt["id"] if isinstance(bt, dict) else bt for bt in dispute.get("balance_transactions") or []]
    return Prepared(contexts=[await books.fetch_context(gw, t) for t in txns], objects=[dispute])


async def apply(session: AsyncSession, event: Event, prepared: Prepared) -> list[EntryDraft]:
    dispute = prepared.objects[0]
    await mirror.apply_state(session, {**dispute, "balance_transactions": [
        bt["id"] if isinstance(bt, dict) else bt for bt in dispute.get("balance_transactions") or []]}, version(event, prepared))
    return await books.drafts_for(session, prepared.contexts)


DISPUTE = Handler(prepare, apply)
HANDLERS = {t: DISPUTE for t in ("charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed",
                                 "charge.dispute.funds_withdrawn", "charge.dispute.funds_reinstated")}
