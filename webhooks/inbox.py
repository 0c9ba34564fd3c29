"""The event inbox: store once, claim with a lease, record success, retries and dead letters."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from funding.db import dialect_insert, utcnow
from funding.payments.models import StripeEvent
from funding.payments.service import reset_event as reset  # noqa: F401  (the replay command uses it)

MAX_ATTEMPTS = 8
LEASE = dt.timedelta(minutes=5)
_T = StripeEvent.__table__
_TYPES = {"id": "text", "type": "text", "livemode": "boolean", "api_version": "text", "created": "bigint",
          "object_id": "text", "payload": "text", "source": "text", "status": "text", "attempts": "bigint",
          "next_attempt_at": "timestamp", "received_at": "timestamp"}
_COLUMNS = list(_TYPES)
_UNNEST = (f"INSERT INTO stripe_events ({', '.join(_COLUMNS)}) "
           f"SELECT * FROM unnest({', '.join(f'${n}::{t}[]' for n, t in enumerate(_TYPES.values(), 1))}) "
           "ON CONFLICT (id) DO NOTHING RETURNING id")


def _row(event: dict, raw: str, source: str) -> dict:
    obj = event.get("data", {}).get("object") or {}
    now = utcnow()
    return {
        "id": event["id"], "type": event["type"], "livemode": bool(event.get("livemode")),
        "api_version": event.get("api_version"), "created": int(event.get("created") or 0),
        "object_id": obj.get("id") if isinstance(obj, dict) else None, "payload": raw, "source": source,
        "status": "pending", "attempts": 0, "next_attempt_at": now, "received_at": now,
    }


def _insert(dialect: str):
    return dialect_insert(dialect)(_T).on_conflict_do_nothing(index_elements=["id"])


async def store(engine: AsyncEngine, event: dict, raw: str, *, source: str = "webhook") -> bool:
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
        self.queue: asyncio.Queue = asyncio.Queue()
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name="webhook-inbox-writer")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def store(self, event: dict, raw: str) -> bool:
        if self.task is None or self.task.done():
            return await store(self.engine, event, raw)
        future = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((_row(event, raw, "webhook"), future))
        return await future

    async def _run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while len(batch) < self.MAX_BATCH and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            first: dict[str, dict] = {}
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
            answered = set()
            for row, future in batch:
                if not future.done():
                    future.set_result(row["id"] in inserted and row["id"] not in answered)
                answered.add(row["id"])

    async def _postgresql(self, rows: list[dict]) -> set[str]:
        """One statement on the driver's connection: its own transaction, committed (durable under
        synchronous_commit) when the call returns. asyncpg prepares it once per connection."""
        async with self.engine.connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
            found = await driver.fetch(_UNNEST, *([row[c] for row in rows] for c in _COLUMNS))
        return {r[0] for r in found}

    async def _sqlite(self, conn, rows: dict[str, dict]) -> set[str]:
        inserted = set()
        for row in rows.values():
            if (await conn.execute(_insert("sqlite").values(**row))).rowcount == 1:
                inserted.add(row["id"])
        return inserted


async def store_many(session: AsyncSession, events: list[dict], *, source: str) -> int:
    """Insert-or-ignore events fetched from the API; returns how many were new."""
    stmt = _insert(session.bind.dialect.name)
    new = 0
    for evt in events:  # one by one: executemany does not report rowcounts on every driver
        new += (await session.execute(stmt.values(**_row(evt, json.dumps(evt), source)))).rowcount
    return new


async def claim(session: AsyncSession, *, limit: int) -> list[StripeEvent]:
    """Take up to ``limit`` due events with a lease (FOR UPDATE SKIP LOCKED on PostgreSQL).

    An expired lease (a worker died mid-way) makes the event due again; effects are
    keyed by Stripe ids, so processing it twice changes nothing.
    """
    now = utcnow()
    due = or_(
        and_(StripeEvent.status.in_(("pending", "failed")), StripeEvent.next_attempt_at <= now),
        and_(StripeEvent.status == "processing", StripeEvent.lease_until < now),
    )
    query = select(StripeEvent.id).where(due).order_by(StripeEvent.created, StripeEvent.received_at).limit(limit)
    if session.bind.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    ids = (await session.scalars(query)).all()
    if not ids:
        return []
    await session.execute(
        update(StripeEvent).where(StripeEvent.id.in_(ids))
        .values(status="processing", lease_until=now + LEASE, attempts=StripeEvent.attempts + 1)
    )
    rows = (await session.scalars(select(StripeEvent).where(StripeEvent.id.in_(ids)).execution_options(populate_existing=True))).all()
    order = {event_id: n for n, event_id in enumerate(ids)}
    return sorted(rows, key=lambda e: order[e.id])


async def mark_processed(session: AsyncSession, event_ids: list[str]) -> None:
    if event_ids:
        await session.execute(update(StripeEvent).where(StripeEvent.id.in_(event_ids))
                              .values(status="processed", processed_at=utcnow(), lease_until=None, last_error=None))


async def mark_failed(session: AsyncSession, event: StripeEvent, error: str) -> str:
    """Retry later with back-off; after MAX_ATTEMPTS the event is a visible dead letter."""
    dead = event.attempts >= MAX_ATTEMPTS
    delay = dt.timedelta(seconds=min(3600, 5 * 3 ** max(0, event.attempts - 1)))
    status = "dead" if dead else "failed"
    await session.execute(update(StripeEvent).where(StripeEvent.id == event.id).values(
        status=status, last_error=error[:2000], lease_until=None, next_attempt_at=utcnow() + delay))
    return status

