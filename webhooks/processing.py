"""Process stored events: claim a batch, fetch from Stripe, apply in one transaction.

The batch's ledger drafts are posted together (one chain lock for the batch); if the
batch fails, each event is retried alone so one bad event never blocks the others, and
a failing event is retried with back-off until it becomes a visible dead letter.
"""

from __future__ import annotations

import asyncio
import json
import logging

from sqlalchemy.ext.asyncio import async_sessionmaker

from funding.db import transaction
from funding.ledger.service import post
from funding.payments.books import dated_for_open_period
from funding.stripe_gateway import StripeGateway
from webhooks.handlers import Prepared, registry
from webhooks.inbox import claim, mark_failed, mark_processed

log = logging.getLogger("funding.webhooks")
HANDLERS = registry()
FETCH_CONCURRENCY = 8


async def process_due(sessions: async_sessionmaker, gw: StripeGateway, *, limit: int = 100) -> int:
    """Process up to ``limit`` due events. Returns how many were claimed."""
    async with transaction(sessions) as session:
        events = await claim(session, limit=limit)
    if not events:
        return 0
    payloads = {e.id: json.loads(e.payload) for e in events}
    prepared: dict[str, list[Prepared]] = {}
    failures: dict[str, str] = {}
    semaphore = asyncio.Semaphore(FETCH_CONCURRENCY)

    async def fetch(event) -> None:
        handlers = HANDLERS.get(event.type, [])  # none: a flow we don't handle (yet): stored, acknowledged, done
        async with semaphore:
            try:
                prepared[event.id] = [await h.prepare(gw, payloads[event.id]) for h in handlers]
            except Exception as exc:  # noqa: BLE001 - any failure is retried later, with its message kept
                log.warning("event %s (%s): fetching failed: %s", event.id, event.type, exc)
                failures[event.id] = f"prepare: {type(exc).__name__}: {exc}"

    await asyncio.gather(*(fetch(e) for e in events))
    ready = [e for e in events if e.id in prepared]
    try:
        await _apply(sessions, ready, payloads, prepared)
    except Exception as exc:  # noqa: BLE001
        log.info("batch of %s events failed (%s); applying them one by one", len(ready), exc)
        for event in ready:
            try:
                await _apply(sessions, [event], payloads, prepared)
            except Exception as one:  # noqa: BLE001
                log.warning("event %s (%s) failed: %s", event.id, event.type, one)
                failures[event.id] = f"apply: {type(one).__name__}: {one}"
    if failures:
        async with transaction(sessions) as session:
            for event in events:
                if event.id in failures:
                    await mark_failed(session, event, failures[event.id])
    return len(events)


async def _apply(sessions, events, payloads, prepared) -> None:
    if not events:
        return
    async with transaction(sessions) as session:
        drafts = []
        for event in events:
            for handler, ready in zip(HANDLERS.get(event.type, []), prepared[event.id]):
                drafts.extend(await handler.apply(session, payloads[event.id], ready))
        if drafts:
            await post(session, await dated_for_open_period(session, drafts))
        await mark_processed(session, [e.id for e in events])


async def drain(sessions, gw: StripeGateway, *, batch: int = 100) -> int:
    """Process until nothing is due."""
    total = 0
    while True:
        done = await process_due(sessions, gw, limit=batch)
        total += done
        if done < batch:
            return total
