"""Creating things in Stripe exactly once.

The request row (with its idempotency key, derived from our own record) is committed
*before* the call. A definite answer is recorded; no definite answer leaves the row
``unknown``, and ``resolve_unknown`` (the worker's sweep) settles it:

- within 24 h, by repeating the very same request with the same key: Stripe answers
  with the object it created the first time, or creates it now — once either way;
- later (Stripe forgets keys after ~24 h), by searching for our id in ``metadata``
  first, and creating anew (with the next attempt's key) only if nothing is there.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from funding.db import Sessions, insert_ignore, transaction, utcnow
from funding.payments.models import RequestStatus, StripeRequest
from funding.stripe_gateway import StripeGateway, StripeRefused, StripeUnknown

if TYPE_CHECKING:
    from funding.settings import Settings

log = logging.getLogger("funding.payments")
KEY_LIFETIME = dt.timedelta(hours=23)
SEARCHABLE = {"payment_intents", "customers", "subscriptions", "invoices", "charges", "prices", "products"}


def idempotency_key(ref: str, resource: str, attempt: int) -> str:
    return f"entrelab-{ref}-{resource}-{attempt}".replace(":", "-").replace(".", "-")


async def create_once(
    sessions: Sessions, gw: StripeGateway, *, ref: str, resource: str, params: dict[str, Any], tag: bool = True
) -> dict[str, Any]:
    """Create a Stripe object for our record ``ref`` (e.g. ``payment:12``) at most once.

    ``params["metadata"]["entrelab_ref"]`` is set to ``ref`` so the object can be found
    again (``tag=False`` for the few objects that take no metadata, such as Billing
    Portal sessions). Raises StripeRefused (definite no) or StripeUnknown (row left ``unknown``).
    """
    if tag:
        params = {**params, "metadata": {**params.get("metadata", {}), "entrelab_ref": ref}}
    async with transaction(sessions) as session:
        existing = await session.scalar(
            select(StripeRequest).where(StripeRequest.ref == ref, StripeRequest.resource == resource)
            .order_by(StripeRequest.attempt.desc()).limit(1)
        )
        if existing is not None and existing.status == RequestStatus.SUCCEEDED:
            request_id, key = existing.id, existing.idempotency_key
            done = existing.stripe_id
        else:
            done = None
            attempt = existing.attempt if existing is not None else 1
            key = idempotency_key(ref, resource, attempt)
            if existing is not None:
                request_id = existing.id
                # A retry under the same key sends what the first attempt sent, as Stripe expects
                # (anything derived from the clock, such as a Checkout's expires_at, included).
                if existing.status in (RequestStatus.PENDING, RequestStatus.UNKNOWN) and existing.params:
                    params = json.loads(existing.params)
            else:
                inserted = await insert_ignore(
                    session, StripeRequest,
                    {"ref": ref, "resource": resource, "attempt": attempt, "idempotency_key": key,
                     "params": json.dumps(params, sort_keys=True), "status": RequestStatus.PENDING, "created_at": utcnow(),
                     "updated_at": utcnow()},
                    ["idempotency_key"],
                )
                # None: a concurrent caller inserted it first; same key, same outcome
                request_id = inserted if inserted is not None else (await session.execute(
                    select(StripeRequest.id).where(StripeRequest.idempotency_key == key))).scalar_one()
    if done:
        return await gw.retrieve(resource, done)
    return await _call(sessions, gw, request_id, resource, params, key)


async def _call(sessions: Sessions, gw: StripeGateway, request_id: int, resource: str, params: dict[str, Any], key: str) -> dict[str, Any]:
    try:
        obj = await gw.create(resource, params, key=key)
    except StripeRefused as exc:
        await _settle(sessions, request_id, "failed", error=str(exc))
        raise
    except StripeUnknown as exc:
        await _settle(sessions, request_id, "unknown", error=str(exc))
        raise
    await _settle(sessions, request_id, "succeeded", stripe_id=obj["id"])
    return obj


async def _settle(sessions: Sessions, request_id: int, status: str, *, stripe_id: str | None = None, error: str | None = None) -> None:
    async with transaction(sessions) as session:
        await session.execute(
            update(StripeRequest).where(StripeRequest.id == request_id, StripeRequest.status != RequestStatus.SUCCEEDED)
            .values(status=status, stripe_id=stripe_id, error=error, updated_at=utcnow())
        )


async def resolve_unknown(sessions: Sessions, settings: Settings, gw: StripeGateway | None = None, *, limit: int = 50) -> int:
    """The sweep: settle requests whose outcome is unknown (or stuck pending after a crash)."""
    stale = utcnow() - dt.timedelta(minutes=2)
    async with sessions() as session:
        rows = (
            await session.scalars(
                select(StripeRequest).where(
                    (StripeRequest.status == RequestStatus.UNKNOWN)
                    | ((StripeRequest.status == RequestStatus.PENDING) & (StripeRequest.updated_at < stale))
                ).order_by(StripeRequest.id).limit(limit)
            )
        ).all()
    if not rows:
        return 0
    own = gw is None
    gw = gw or StripeGateway(settings)
    settled = 0
    try:
        for row in rows:
            params = json.loads(row.params)
            try:
                if utcnow() - row.created_at < KEY_LIFETIME:
                    await _call(sessions, gw, row.id, row.resource, params, row.idempotency_key)
                else:
                    found: list[dict[str, Any]] = []
                    if row.resource in SEARCHABLE:
                        found = await gw.search(row.resource, f"metadata['entrelab_ref']:'{row.ref}'")
                    if found:
                        await _settle(sessions, row.id, "succeeded", stripe_id=found[0]["id"])
                    else:
                        async with transaction(sessions) as session:
                            retry_id = await insert_ignore(
                                session, StripeRequest,
                                {"ref": row.ref, "resource": row.resource, "attempt": row.attempt + 1,
                                 "idempotency_key": idempotency_key(row.ref, row.resource, row.attempt + 1),
                                 "params": row.params, "status": RequestStatus.PENDING, "created_at": utcnow(), "updated_at": utcnow()},
                                ["idempotency_key"],
                            )
                            await session.execute(update(StripeRequest).where(StripeRequest.id == row.id)
                                                  .values(status=RequestStatus.FAILED, error="superseded by a new attempt"))
                        if retry_id:
                            await _call(sessions, gw, retry_id, row.resource, params,
                                        idempotency_key(row.ref, row.resource, row.attempt + 1))
                settled += 1
            except (StripeRefused, StripeUnknown) as exc:
                log.warning("sweep: request %s (%s) still unresolved: %s", row.id, row.ref, exc)
    finally:
        if own:
            await gw.aclose()
    return settled


async def request_for(sessions: Sessions, ref: str, resource: str) -> StripeRequest | None:
    async with sessions() as session:
        return await session.scalar(
            select(StripeRequest).where(StripeRequest.ref == ref, StripeRequest.resource == resource)
            .order_by(StripeRequest.attempt.desc()).limit(1)
        )
