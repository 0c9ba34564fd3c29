"""Recovering what webhooks missed, and replaying one event.

``funding stripe sync --since DATE``: the Events API lists the events of the last 30 days
that never reached us (``delivery_success=false``); they go into the inbox like any
delivery (insert-or-ignore) and are processed. Then every balance transaction since
DATE that has no ledger entry is booked. Both steps are idempotent.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import cast

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from funding.db import must_get, transaction
from funding.payments import books
from funding.payments.service import reset_event
from funding.stripe_gateway import StripeGateway
from webhooks.events import Event
from webhooks.inbox import store_many
from webhooks.processing import drain


@dataclass
class SyncReport:
    events_seen: int = 0
    events_new: int = 0
    events_processed: int = 0
    transactions_seen: int = 0
    transactions_booked: int = 0


async def sync(sessions: async_sessionmaker[AsyncSession], gw: StripeGateway, since: dt.datetime) -> SyncReport:
    report = SyncReport()
    created = {"gte": int(since.timestamp())}
    batch: list[Event] = []
    async for event in gw.list_all("events", {"delivery_success": "false", "created": created}):
        report.events_seen += 1
        batch.append(event)
    async with transaction(sessions) as session:
        report.events_new = await store_many(session, batch, source="sync")
    report.events_processed = await drain(sessions, gw)

    missing: list[str] = []
    async for txn in gw.list_all("balance_transactions", {"created": created}):
        report.transactions_seen += 1
        async with sessions() as session:
            if await books.already_posted(session, txn["id"]) is None:
                missing.append(txn["id"])
    for start in range(0, len(missing), 50):
        report.transactions_booked += len([p for p in await books.ingest(sessions, gw, missing[start:start + 50]) if p.created])
    return report


async def replay(sessions: async_sessionmaker[AsyncSession], gw: StripeGateway, event_id: str) -> str:
    """Process one event again, fetching it from Stripe if we never stored it."""
    async with transaction(sessions) as session:
        found = await reset_event(session, event_id)
    if not found:
        event = cast(Event, await gw.retrieve("events", event_id))  # the Events API answers with an event
        async with transaction(sessions) as session:
            await store_many(session, [event], source="replay")
    await drain(sessions, gw)
    from funding.payments.models import StripeEvent

    async with sessions() as session:
        row = await must_get(session, StripeEvent, event_id)  # stored above if it was not already, never deleted
    return f"{row.status}" + (f" ({row.last_error})" if row.last_error else "")


def describe(report: SyncReport) -> str:
    return json.dumps(report.__dict__)
