"""Process stored events: claim a batch, fetch from Stripe, apply in one transaction.

The batch's ledger drafts are posted together (one chain lock for the batch); if the
batch fails, each event is retried alone so one bad event never blocks the others, and
a failing event is retried with back-off until it becomes a visible dead letter.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from funding.db import plan_each_statement, refresh_statistics, transaction
from funding.ledger.service import EntryDraft, post
from funding.payments.books import dated_for_open_period
from funding.payments.models import StripeEvent
from funding.payments.verify import MONEY_EVENTS, StripeMismatch, check_payload, stripe_copy
from funding.stripe_gateway import StripeGateway
from webhooks.events import Event, StripeDict
from webhooks.handlers import Handler, Prepared, registry
from webhooks.handlers.charges import settled_charge
from webhooks.inbox import claim, mark_failed, mark_processed

if TYPE_CHECKING:
    # BatchReads stands in for the gateway (every attribute it does not define is the gateway's),
    # so to the type checker it is one; at run time it is a plain wrapper.
    _GatewayView = StripeGateway
else:
    _GatewayView = object

log = logging.getLogger("funding.webhooks")
HANDLERS = registry()
FETCH_CONCURRENCY = 8
# The tables a drain grows, and how often it checks their statistics (see refresh_statistics).
WRITTEN_TABLES = ["stripe_events", "payments", "entries", "postings", "emails"]
STATISTICS_EVERY = 2.0


class TxnReads:
    """Balance transactions read through the list endpoint, a hundred per call instead of one
    call each (Stripe rate-limits reads too), kept for a whole drain and shared by its workers:
    a backlog's events name transactions that sit next to each other in Stripe's list, so a
    scan resumes where the previous one stopped instead of starting over. Balance transactions
    never change once created, so reading them early is safe; the cache is bounded."""

    MAX = 20_000
    # A transaction is created with (or before) its event: the window ends 2 s (clock slack)
    # after the batch's last event, not a minute after it, which in a backlog is thousands of
    # newer transactions to page through before reaching the batch's own.
    WINDOW_BEFORE, WINDOW_AFTER = 300, 2

    def __init__(self, gw: StripeGateway):
        self.gw = gw
        self.txns: collections.OrderedDict[str, StripeDict] = collections.OrderedDict()
        self.cursors: dict[tuple[int, int], str | None] = {}
        self.lock = asyncio.Lock()

    def get(self, txn_id: str, sources: dict[str, StripeDict]) -> StripeDict | None:
        """The transaction with its source object: as read expanded, or joined to the charge
        the batch's payload holds (``sources``, by transaction id)."""
        txn = self.txns.get(txn_id)
        if txn is None or isinstance(txn.get("source"), dict):
            return txn
        known = sources.get(txn_id)
        return {**txn, "source": known} if known is not None and known.get("id") == txn.get("source") else None

    def _keep(self, txn: StripeDict) -> None:
        self.txns[txn["id"]] = txn
        while len(self.txns) > self.MAX:
            self.txns.popitem(last=False)

    async def prefetch(self, payloads: list[Event]) -> dict[str, StripeDict]:
        """Read the batch's balance transactions; returns the sources its payloads hold (see ``get``)."""
        wanted: set[str] = set()
        created: list[int] = []
        known: dict[str, StripeDict] = {}
        for event in payloads:
            obj = (event.get("data") or {}).get("object") or {}
            refs = [obj.get("balance_transaction"), *(obj.get("balance_transactions") or [])]
            for ref in refs:
                ref = ref.get("id") if isinstance(ref, dict) else ref
                if isinstance(ref, str) and ref.startswith("txn_"):
                    wanted.add(ref)
                    created.append(int(event.get("created") or 0))
            charge = settled_charge(event)
            if charge is not None:
                known[charge["balance_transaction"]] = charge
        async with self.lock:  # one scan at a time: the next worker usually finds its share read
            missing = {t for t in wanted if self.get(t, known) is None}
            if len(missing) < 2:  # one is fetched by itself, as cheaply
                return known
            # When every missing transaction's source is a charge the batch's payloads already
            # hold (as the charge handler would use it), the list is read without expanding
            # its sources: a fifth of the bytes to transfer and parse.
            expand = not missing <= known.keys()
            try:
                await self._scan(missing, (min(created) - self.WINDOW_BEFORE, max(created) + self.WINDOW_AFTER), expand)
            except Exception as exc:
                log.info("batch read of balance transactions failed (%s); reading them one by one", exc)
        return known

    async def _scan(self, missing: set[str], window: tuple[int, int], expand: bool) -> None:
        params = {"created": {"gte": window[0], "lte": window[1]}, "limit": 100}
        if expand:
            params["expand"] = ["data.source"]
        cursor, restarted = self.cursors.get(window), False
        # Bounded, for a busy account's window holds other transactions too; generous, for a page
        # costs about one single read and serves a hundred, and what it brings is kept for the
        # batches after (measured: 26 % of a backlog read one by one with 3 pages of slack, 7 % with 25).
        pages = len(missing) // 100 + 25
        while missing and pages > 0:
            page = await self.gw.list("balance_transactions", {**params, **({"starting_after": cursor} if cursor else {})})
            pages -= 1
            for txn in page.get("data") or []:
                if expand or not isinstance((self.txns.get(txn["id"]) or {}).get("source"), dict):
                    self._keep(txn)  # an expanded copy is not replaced by a bare one
                missing.discard(txn["id"])
            if page.get("has_more") and page.get("data"):
                cursor = page["data"][-1]["id"]
            else:  # the end of the window: what is still missing may lie before the cursor
                cursor = None
                if restarted:
                    break
                restarted = True
        if len(self.cursors) > 100:
            self.cursors.clear()
        self.cursors[window] = cursor


class BatchReads(_GatewayView):
    """The gateway as one batch sees it: balance transactions come from the drain's
    ``TxnReads`` when it holds them; anything else, or anything not found, goes to Stripe."""

    def __init__(self, gw: StripeGateway, reads: TxnReads, sources: dict[str, StripeDict]):
        self.gw = gw
        self.reads = reads
        self.sources = sources

    def __getattr__(self, name: str) -> Any:
        return getattr(self.gw, name)

    async def retrieve(self, resource: str, object_id: str, *, expand: list[str] | None = None) -> StripeDict:
        if resource == "balance_transactions" and expand in (None, ["source"]):
            txn = self.reads.get(object_id, self.sources)
            if txn is not None:
                return txn
        return await self.gw.retrieve(resource, object_id, expand=expand)


async def process_due(sessions: async_sessionmaker[AsyncSession], gw: StripeGateway, *, limit: int = 100,
                      reads: TxnReads | None = None) -> int:
    """Process up to ``limit`` due events. Returns how many were claimed."""
    async with transaction(sessions) as session:
        events = await claim(session, limit=limit)
    if not events:
        return 0
    payloads: dict[str, Event] = {e.id: orjson.loads(e.payload) for e in events}
    reads = reads or TxnReads(gw)
    gw = BatchReads(gw, reads, await reads.prefetch(list(payloads.values())))
    prepared: dict[str, list[Prepared]] = {}
    failures: dict[str, str] = {}
    refused: set[str] = set()  # disagree with Stripe or with our rows: dead letters at once
    semaphore = asyncio.Semaphore(FETCH_CONCURRENCY)

    async def fetch(event: StripeEvent) -> None:
        handlers = HANDLERS.get(event.type, [])  # none: a flow we don't handle (yet): stored, acknowledged, done
        async with semaphore:
            try:
                ready = [await h.prepare(gw, payloads[event.id]) for h in handlers]
                _check_against_stripe(payloads[event.id], ready)
                prepared[event.id] = ready
            except StripeMismatch as exc:
                log.warning("event %s (%s) refused: %s", event.id, event.type, exc)
                failures[event.id] = f"refusé : {exc}"
                refused.add(event.id)
            except Exception as exc:
                log.warning("event %s (%s): fetching failed: %s", event.id, event.type, exc)
                failures[event.id] = f"prepare: {type(exc).__name__}: {exc}"

    await asyncio.gather(*(fetch(e) for e in events))
    ready = [e for e in events if e.id in prepared]
    try:
        await _apply(sessions, ready, payloads, prepared)
    except Exception as exc:
        log.info("batch of %s events failed (%s); applying them one by one", len(ready), exc)
        for event in ready:
            try:
                await _apply(sessions, [event], payloads, prepared)
            except StripeMismatch as one:
                log.warning("event %s (%s) refused: %s", event.id, event.type, one)
                failures[event.id] = f"refusé : {one}"
                refused.add(event.id)
            except Exception as one:
                log.warning("event %s (%s) failed: %s", event.id, event.type, one)
                failures[event.id] = f"apply: {type(one).__name__}: {one}"
    if failures:
        async with transaction(sessions) as session:
            for event in events:
                if event.id in failures:
                    await mark_failed(session, event, failures[event.id], dead=event.id in refused)
    return len(events)


def _check_against_stripe(payload: Event, ready: list[Prepared]) -> None:
    """An event about money whose payload claims a payment must agree with the object as the
    handlers fetched it from Stripe (see funding.payments.verify); else it is refused whole."""
    if not payload.get("type", "").startswith(MONEY_EVENTS):
        return
    obj = (payload.get("data") or {}).get("object") or {}
    current = stripe_copy(obj, [o for p in ready for o in p.objects])
    if current is not None:
        check_payload(obj, current)


async def _apply(sessions: async_sessionmaker[AsyncSession], events: list[StripeEvent], payloads: dict[str, Event],
                 prepared: dict[str, list[Prepared]]) -> None:
    if not events:
        return
    work: dict[Handler, list[tuple[Event, Prepared]]] = collections.defaultdict(list)  # in the batch's order
    for event in events:
        for handler, ready in zip(HANDLERS.get(event.type, []), prepared[event.id], strict=True):  # one each
            work[handler].append((payloads[event.id], ready))
    async with transaction(sessions) as session:
        if len(events) > 1:  # a batch: its statements planned for its size (funding.db.plan_each_statement)
            await plan_each_statement(session)
        drafts: list[EntryDraft] = []
        # Handlers in module order, as for a single event (the stable sort keeps the batch's
        # order within a handler); effects never depend on the order of different events.
        for handler in sorted(work, key=lambda h: h.apply.__module__):
            items = work[handler]
            if handler.apply_many is not None and len(items) > 1:
                drafts.extend(await handler.apply_many(session, items))
            else:
                for payload, ready in items:
                    drafts.extend(await handler.apply(session, payload, ready))
        await mark_processed(session, [e.id for e in events])
        if drafts:  # last: the ledger's head stays locked from here to the commit
            await post(session, await dated_for_open_period(session, drafts))


async def drain(sessions: async_sessionmaker[AsyncSession], gw: StripeGateway, *, batch: int = 500,
                workers: int | None = None) -> int:
    """Process until nothing is due. On PostgreSQL several batches run at once (their claims
    skip each other's rows; only posting to the ledger takes turns), so the time spent
    waiting on the database and on Stripe overlaps. A batch is one transaction: what each
    costs whatever its size (claim, round trips, planning, commit) is paid once for up to
    ``batch`` events; measured on 20,000 events, 100 → 500 took the drain from about 1,140
    to 1,490 events/s. A single event still goes alone, at once."""
    if workers is None:
        workers = 4 if sessions.kw["bind"].dialect.name == "postgresql" else 1
    reads = TxnReads(gw)
    upkeep = asyncio.Lock()
    checked = 0.0

    async def keep_statistics() -> None:  # one worker at a time, every few seconds
        nonlocal checked
        if upkeep.locked() or time.monotonic() - checked < STATISTICS_EVERY:
            return
        async with upkeep:
            checked = time.monotonic()
            try:
                await refresh_statistics(sessions, WRITTEN_TABLES)
            except Exception as exc:
                log.info("could not refresh statistics: %s", exc)

    async def worker() -> int:
        total = 0
        while True:
            await keep_statistics()
            done = await process_due(sessions, gw, limit=batch, reads=reads)
            total += done
            if done < batch:
                return total

    return sum(await asyncio.gather(*(worker() for _ in range(workers))))
