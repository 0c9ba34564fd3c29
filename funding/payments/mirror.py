"""The latest state of Stripe objects with a lifecycle, moved only forwards."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from funding.db import dialect_insert, dialect_of, rowcount, utcnow
from funding.payments.models import StripeObject

# At equal timestamps a terminal state wins: an object never goes back from it.
TERMINAL = {"canceled", "incomplete_expired", "succeeded", "paid", "void", "uncollectible", "won", "lost", "failed",
            "expired", "complete"}
# ...except these, which still move on: a paid payout the bank sends back, a refund the card network refuses.
TERMINAL_EXITS = {("paid", "failed"), ("succeeded", "failed")}


async def apply_state(session: AsyncSession, obj: dict[str, Any], version: int) -> bool:
    """Store ``obj`` as the object's state if it is newer than what we hold.

    ``version`` is the ``created`` time of the event that carried it, or the time we
    retrieved it from Stripe (a fetched object is the current state). Returns whether
    the stored state changed.
    """
    data = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)  # the SDK gives *_decimal fields as Decimal
    status = obj.get("status")
    inserted = await insert_ignore_object(session, obj, status, version, data)
    if inserted:
        return True
    current = await session.get(StripeObject, obj["id"], populate_existing=True)
    if current is None:  # inserted by nobody yet not insertable: only a concurrent delete, which nothing does
        raise LookupError(f"stripe object {obj['id']} vanished")
    if version < current.version:
        return False
    if version == current.version and current.status in TERMINAL and status != current.status \
            and (current.status, status) not in TERMINAL_EXITS:
        return False
    result = await session.execute(
        update(StripeObject)
        .where(StripeObject.id == obj["id"], StripeObject.version <= version)
        .values(status=status, version=version, data=data, updated_at=utcnow())
    )
    return rowcount(result) == 1


async def insert_ignore_object(session: AsyncSession, obj: dict[str, Any], status: str | None, version: int, data: str) -> bool:
    values = {"id": obj["id"], "type": obj.get("object", "unknown"), "status": status, "livemode": bool(obj.get("livemode")),
              "version": version, "data": data, "updated_at": utcnow()}
    insert = dialect_insert(dialect_of(session))
    stmt = insert(StripeObject).values(**values).on_conflict_do_nothing(index_elements=["id"]).returning(StripeObject.id)
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def state_of(session: AsyncSession, object_id: str) -> dict[str, Any] | None:
    row = await session.scalar(select(StripeObject.data).where(StripeObject.id == object_id))
    return json.loads(row) if row else None
