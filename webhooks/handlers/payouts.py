"""Payouts: the Stripe balance leaves for the bank (5115 → 512); reconciled afterwards. A payout
the bank sends back (``payout.failed``, even after ``paid``) is reversed: its own entry and the
reversing one, from its ``failure_balance_transaction``."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from funding.ledger.service import EntryDraft
from funding.payments import books, mirror
from funding.payments.reconcile import remember_payout
from funding.stripe_gateway import StripeGateway
from webhooks.events import Event
from webhooks.handlers import Handler, Prepared, version


async def prepare(gw: StripeGateway, event: Event) -> Prepared:
    payout = await gw.retrieve("payouts", event["data"]["object"]["id"])
    contexts = []
    for key in ("balance_transaction", "failure_balance_transaction"):
        bt = payout.get(key)
        if payout.get("status") in ("paid", "failed") and bt:
            contexts.append(await books.fetch_context(gw, bt["id"] if isinstance(bt, dict) else bt))
    return Prepared(contexts=contexts, objects=[payout])


async def apply(session: AsyncSession, event: Event, prepared: Prepared) -> list[EntryDraft]:
    payout = prepared.objects[0]
    await mirror.apply_state(session, payout, version(event, prepared))
    await remember_payout(session, payout)
    return await books.drafts_for(session, prepared.contexts)


PAYOUT = Handler(prepare, apply)
HANDLERS = {t: PAYOUT for t in ("payout.created", "payout.updated", "payout.paid", "payout.failed", "payout.canceled",
                                "payout.reconciliation_completed")}
