"""The event inbox: store once, claim with a lease, record success, retries and dead letters."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from funding.db import utcnow
from funding.payments.models import StripeEvent
from funding.payments.service import reset_event as reset  # noqa: F401  (the replay command uses it)

MAX_ATTEMPTS = 8
LEASE = dt.timedelta(minutes=5)
_T = StripeEvent.__table__


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
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(_T).on_conflict_do_nothing(index_elements=["id"])


async def store(engine: AsyncEngine, event: dict, raw: str, *, source: str = "webhook") -> bool:
    """Insert-or-ignore under the event id, committed. True if this delivery was the first."""
    async with engine.begin() as conn:
        result = await conn.execute(_insert(engine.dialect.name).values(**_row(event, raw, source)))
        return result.rowcount == 1


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

