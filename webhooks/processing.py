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


class BatchReads:
    """The gateway as one batch sees it: the balance transactions its events name are read
    together through the list endpoint (one call for up to a hundred, instead of one each:
    Stripe rate-limits reads too); anything else, or anything not found, goes to Stripe as usual.
    Balance transactions never change once created, so reading them early is safe."""

    def __init__(self, gw: StripeGateway):
        self.gw = gw
        self.txns: dict[str, dict] = {}

    def __getattr__(self, name):
        return getattr(self.gw, name)

    async def retrieve(self, resource: str, object_id: str, *, expand: list[str] | None = None) -> dict:
        if resource == "balance_transactions" and object_id in self.txns and expand in (None, ["source"]):
            return self.txns[object_id]
        return await self.gw.retrieve(resource, object_id, expand=expand)

    async def prefetch(self, payloads: list[dict]) -> None:
        wanted, created = set(), []
        for event in payloads:
            obj = (event.get("data") or {}).get("object") or {}
            refs = [obj.get("balance_transaction")] + list(obj.get("balance_transactions") or [])
            for ref in refs:
                ref = ref.get("id") if isinstance(ref, dict) else ref
                if isinstance(ref, str) and ref.startswith("txn_"):
                    wanted.add(ref)
                    created.append(int(event.get("created") or 0))
        if len(wanted) < 2:
            return
        params = {"created": {"gte": min(created) - 3600, "lte": max(created) + 60}, "expand": ["data.source"]}
        budget = (len(wanted) // 100 + 3) * 100  # a busy account has other transactions in the window: bounded
        try:
            async for txn in self.gw.list_all("balance_transactions", params):
                if txn["id"] in wanted and isinstance(txn.get("source"), dict):
                    self.txns[txn["id"]] = txn
                    if len(self.txns) == len(wanted):
                        return
                budget -= 1
                if budget <= 0:
                    return
        except Exception as exc:  # noqa: BLE001 - the handlers fetch one by one instead
            log.info("batch read of balance transactions failed (%s); reading them one by one", exc)


async def process_due(sessions: async_sessionmaker, gw: StripeGateway, *, limit: int = 100) -> int:
    """Process up to ``limit`` due events. Returns how many were claimed."""
    async with transaction(sessions) as session:
        events = await claim(session, limit=limit)
    if not events:
        return 0
    payloads = {e.id: json.loads(e.payload) for e in events}
    gw = BatchReads(gw)
    await gw.prefetch(list(payloads.values()))
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


async def drain(sessions, gw: StripeGateway, *, batch: int = 100, workers: int | None = None) -> int:
    """Process until nothing is due. On PostgreSQL several batches run at once (their claims
    skip each other's rows; only posting to the ledger takes turns), so the time spent
    waiting on the database and on Stripe overlaps."""
    if workers is None:
        workers = 4 if sessions.kw["bind"].dialect.name == "postgresql" else 1

    async def worker() -> int:
        total = 0
        while True:
            done = await process_due(sessions, gw, limit=batch)
            total += done
            if done < batch:
                return total

    return sum(await asyncio.gather(*(worker() for _ in range(workers))))
