"""``invoice.upcoming``: SEPA's pre-notification of a subscription's renewal debit
(funding.payments.prenotice). The event's invoice is a preview (it has no id): the subscription
is fetched to check the renewal is still to come as announced and is paid by an active SEPA
mandate; the email is keyed by subscription and period, so a replay or a duplicate sends nothing more.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from funding.ledger.service import EntryDraft
from funding.payments import prenotice
from funding.stripe_gateway import StripeGateway, StripeRefused
from webhooks.events import Event
from webhooks.handlers import Handler, Prepared


async def prepare(gw: StripeGateway, event: Event) -> Prepared:
    try:
        facts = await prenotice.upcoming_debit(gw, event["data"]["object"])
    except StripeRefused as exc:
        if exc.http_status == 404:  # the subscription is gone: nothing to announce
            return Prepared()
        raise
    return Prepared(objects=[facts] if facts is not None else [])


async def apply(session: AsyncSession, event: Event, prepared: Prepared) -> list[EntryDraft]:
    for facts in prepared.objects:
        await prenotice.send_notice(session, facts)
    return []


HANDLERS = {"invoice.upcoming": Handler(prepare, apply)}
