"""The event inbox: store once, claim with a lease, record success, retries and dead letters."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from funding.db import dialect_insert, dialect_of, rowcount, utcnow
from funding.ops import heartbeat
from funding.ops.models import ProcessHeartbeat
from funding.payments.models import EventStatus, StripeEvent

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy import FromClause
    from sqlalchemy.dialects import postgresql, sqlite

    from webhooks.events import Event

    # The INSERT … ON CONFLICT of either dialect (funding.db.dialect_insert picks one).
    Insert = postgresql.Insert | sqlite.Insert

MAX_ATTEMPTS = 8
LEASE = dt.timedelta(minutes=5)
_T = StripeEvent.__table__
_TYPES = {"id": "text", "type": "text", "livemode": "boolean", "api_version": "text", "created": "bigint",
          "object_id": "text", "payload": "text", "source": "text", "status": "text", "attempts": "bigint",
          "next_attempt_at": "timestamp", "received_at": "timestamp"}
_COLUMNS = list(_TYPES)
# Column names and types from _TYPES, values bound ($1…): nothing from input is interpolated.
_UNNEST = (f"INSERT INTO stripe_events ({', '.join(_COLUMNS)}) "  # noqa: S608
           f"SELECT * FROM unnest({', '.join(f'${n}::{t}[]' for n, t in enumerate(_TYPES.values(), 1))}) "
           "ON CONFLICT (id) DO NOTHING RETURNING id")


Row = dict[str, Any]  # a stripe_events row, by column


def _row(event: Event, raw: str, source: str) -> Row:
    obj = event.get("data", {}).get("object") or {}
    now = utcnow()
    return {
        "id": event["id"], "type": event["type"], "livemode": bool(event.get("livemode")),
        "api_version": event.get("api_version"), "created": int(event.get("created") or 0),
        "object_id": obj.get("id") if isinstance(obj, dict) else None, "payload": raw, "source": source,
        "status": EventStatus.PENDING, "attempts": 0, "next_attempt_at": now, "received_at": now,
    }


def _insert(dialect: str) -> Insert:
    insert: Callable[[FromClause], Insert] = dialect_insert(dialect)
    return insert(_T).on_conflict_do_nothing(index_elements=["id"])


async def store(engine: AsyncEngine, event: Event, raw: str, *, source: str = "webhook") -> bool:
    """Insert-or-ignore under the event id, committed. True if this delivery was the first."""
    async with engine.begin() as conn:
        result = await conn.execute(_insert(engine.dialect.name).values(**_row(event, raw, source)))
        return result.rowcount == 1


class InboxWriter:
    """Group commit for the webhook endpoint: concurrent deliveries share one multi-row
    INSERT … ON CONFLICT DO NOTHING and one commit. Each delivery is answered only once
    its batch is committed, so an acknowledged event is always durable."""

    MAX_BATCH = 100

    def __init__(self, engine: AsyncEngine):
        self.engine = engine
        self.queue: asyncio.Queue[tuple[Row, asyncio.Future[bool]]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name="webhook-inbox-writer")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def store(self, event: Event, raw: str) -> bool:
        if self.task is None or self.task.done():
            return await store(self.engine, event, raw)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((_row(event, raw, "webhook"), future))
        return await future

    async def _run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while len(batch) < self.MAX_BATCH and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            first: dict[str, Row] = {}
            for row, _ in batch:  # the same event twice in one batch: the first copy is the delivery that counts
                first.setdefault(row["id"], row)
            try:
                if self.engine.dialect.name == "postgresql":
                    inserted = await self._postgresql(list(first.values()))
                else:
                    async with self.engine.begin() as conn:
                        inserted = await self._sqlite(conn, first)
            except Exception as exc:  # every waiting delivery gets the failure: Stripe will retry
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            answered: set[str] = set()
            for row, future in batch:
                if not future.done():
                    future.set_result(row["id"] in inserted and row["id"] not in answered)
                answered.add(row["id"])

    async def _postgresql(self, rows: list[Row]) -> set[str]:
        """One statement on the driver's connection: its own transaction, committed (durable under
        synchronous_commit) when the call returns. asyncpg prepares it once per connection."""
        async with self.engine.connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
            if driver is None:  # only once the connection is closed, not while it is checked out
                raise RuntimeError("the checked-out connection has no driver connection")
            found = await driver.fetch(_UNNEST, *([row[c] for row in rows] for c in _COLUMNS))
        return {r[0] for r in found}

    async def _sqlite(self, conn: AsyncConnection, rows: dict[str, Row]) -> set[str]:
        inserted: set[str] = set()
        for row in rows.values():
            if (await conn.execute(_insert("sqlite").values(**row))).rowcount == 1:
                inserted.add(row["id"])
        return inserted


async def store_many(session: AsyncSession, events: list[Event], *, source: str) -> int:
    """Insert-or-ignore events fetched from the API; returns how many were new."""
    stmt = _insert(dialect_of(session))
    new = 0
    for evt in events:  # one by one: executemany does not report rowcounts on every driver
        new += rowcount(await session.execute(stmt.values(**_row(evt, json.dumps(evt), source))))
    return new


# The claim must walk the index in order and stop at the limit, whatever the statistics say.
# Without them (a server without autovacuum, or a backlog that grew since the last ANALYZE) the
# planner guesses a few dozen due rows and prefers a bitmap scan of all of them and a sort:
# 55-80 ms a claim at 40,000 pending, growing with the backlog; and bitmap scans never mark
# the index entries of processed events dead, so they are visited again at every claim.
# Disabled for the claim's own statements only (transaction-local, restored after).
_ORDERED_SCAN = text("SELECT current_setting('enable_sort'), current_setting('enable_bitmapscan'), "
                     "set_config('enable_sort', 'off', true), set_config('enable_bitmapscan', 'off', true), "
                     # planned for the backlog as it is now (see funding.db.plan_each_statement)
                     "set_config('plan_cache_mode', 'force_custom_plan', true)")
_RESTORE_SCAN = text("SELECT set_config('enable_sort', :sort, true), set_config('enable_bitmapscan', :bitmap, true)")


async def claim(session: AsyncSession, *, limit: int) -> list[StripeEvent]:
    """Take up to ``limit`` due events with a lease (FOR UPDATE SKIP LOCKED on PostgreSQL).

    An expired lease (a worker died mid-way), or one held by a process known dead (its
    heartbeat gone or stale: funding.ops.heartbeat), makes the event due again; effects are
    keyed by Stripe ids, so processing it twice changes nothing. Oldest first within each
    kind — expired leases, retries due, then new events — one status at a time, so each
    query walks ix_stripe_events_due (status, next_attempt_at) in order and stops at the
    limit: a backlog of 60,000 events cost 150 ms a claim when they were sorted as one set.
    """
    now = utcnow()
    ids: list[str] = []
    pg = dialect_of(session) == "postgresql"
    holder = heartbeat.current()
    orphaned = StripeEvent.lease_until < now
    if holder is not None:  # a lease whose process is known dead is over now (funding.ops.heartbeat)
        await heartbeat.reap(session, holder.stale)
        orphaned = orphaned | (StripeEvent.leased_by.is_not(None) & StripeEvent.leased_by.not_in(select(ProcessHeartbeat.id)))
    if pg:  # see _ORDERED_SCAN
        saved = (await session.execute(_ORDERED_SCAN)).one()
    for status, due in ((EventStatus.PROCESSING, orphaned),
                        (EventStatus.FAILED, StripeEvent.next_attempt_at <= now),
                        (EventStatus.PENDING, StripeEvent.next_attempt_at <= now)):
        if len(ids) >= limit:
            break
        query = select(StripeEvent.id).where(StripeEvent.status == status, due).order_by(StripeEvent.next_attempt_at) \
            .limit(limit - len(ids))
        if pg:
            query = query.with_for_update(skip_locked=True)
        ids.extend((await session.scalars(query)).all())
    if pg:
        await session.execute(_RESTORE_SCAN, {"sort": saved[0], "bitmap": saved[1]})
    if not ids:
        return []
    rows = (await session.scalars(
        update(StripeEvent).where(StripeEvent.id.in_(ids))
        .values(status=EventStatus.PROCESSING, lease_until=now + LEASE, leased_by=holder.id if holder else None, attempts=StripeEvent.attempts + 1)
        .returning(StripeEvent), execution_options={"populate_existing": True})).all()
    order = {event_id: n for n, event_id in enumerate(ids)}
    return sorted(rows, key=lambda e: order[e.id])


async def mark_processed(session: AsyncSession, event_ids: list[str]) -> None:
    if event_ids:
        await session.execute(update(StripeEvent).where(StripeEvent.id.in_(event_ids))
                              .values(status=EventStatus.PROCESSED, processed_at=utcnow(), lease_until=None, leased_by=None,
                                      last_error=None))


async def mark_failed(session: AsyncSession, event: StripeEvent, error: str, *, dead: bool = False) -> EventStatus:
    """Retry later with back-off; after MAX_ATTEMPTS the event is a visible dead letter. ``dead``:
    at once (refused: its payload disagrees with Stripe or with our rows; staff look, then replay)."""
    dead = dead or event.attempts >= MAX_ATTEMPTS
    delay = dt.timedelta(seconds=min(3600, 5 * 3 ** max(0, event.attempts - 1)))
    status = EventStatus.DEAD if dead else EventStatus.FAILED
    await session.execute(update(StripeEvent).where(StripeEvent.id == event.id).values(
        status=status, last_error=error[:2000], lease_until=None, leased_by=None, next_attempt_at=utcnow() + delay))
    return status

