"""Back-office view of the Stripe boundary: events (dead letters with a replay button),
payouts and their reconciliation, payments, and requests whose outcome is unknown."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from funding.i18n import gettext as _
from funding.payments.models import (
    EVENT_STATES,
    EventStatus,
    Payment,
    Payout,
    RequestStatus,
    StripeEvent,
    StripeObject,
    StripeRequest,
)
from funding.payments.service import reset_event
from funding.web import BOOKS, STAFF, db, flash, redirect_to, render, require


async def overview(request: Request) -> Response:
    status = request.query_params.get("status", "")
    if status and status not in EVENT_STATES:
        raise HTTPException(400, _("État inconnu."))
    async with db(request) as session:
        await require(request, session, BOOKS)
        counts = dict((await session.execute(select(StripeEvent.status, func.count()).group_by(StripeEvent.status))).all())
        shown = (StripeEvent.status == status) if status else StripeEvent.status.in_((EventStatus.FAILED, EventStatus.DEAD))
        query = select(StripeEvent).where(shown).order_by(StripeEvent.received_at.desc()).limit(100)
        events = (await session.execute(query.with_only_columns(
            StripeEvent.id, StripeEvent.type, StripeEvent.status, StripeEvent.attempts, StripeEvent.last_error,
            StripeEvent.received_at))).all()
        payouts = (await session.execute(select(Payout.id, Payout.amount, Payout.currency, Payout.status, Payout.reconciled,
                                                Payout.difference, Payout.missing_entries, Payout.checked_at)
                                         .order_by(Payout.arrival_date.desc()).limit(50))).all()
        payments = (await session.execute(select(Payment.id, Payment.purpose, Payment.amount, Payment.currency,
                                                 Payment.status, Payment.name, Payment.amount_refunded, Payment.created_at)
                                          .order_by(Payment.id.desc()).limit(50))).all()
        failed = (await session.execute(select(StripeObject.type, StripeObject.data)
                                        .where(StripeObject.type.in_(("payout", "refund")), StripeObject.status == "failed")
                                        .order_by(StripeObject.updated_at.desc()).limit(50))).all()
        unknown = (await session.execute(select(StripeRequest.ref, StripeRequest.resource, StripeRequest.status,
                                                StripeRequest.error, StripeRequest.updated_at, StripeRequest.raised_at)
                                         .where(StripeRequest.status.in_((RequestStatus.UNKNOWN, RequestStatus.PENDING)))
                                         .order_by(StripeRequest.raised_at.is_(None), StripeRequest.id))).all()
    return render(request, "admin/stripe.html", {"counts": counts, "events": events, "status": status, "states": EVENT_STATES,
                                                 "payouts": payouts, "payments": payments, "unknown": unknown,
                                                 "failures": [_failure(kind, json.loads(data)) for kind, data in failed]})


def _failure(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """A payout the bank sent back, or a refund the card network refused, as staff read it."""
    return {"kind": kind, "id": obj.get("id", ""), "amount": int(obj.get("amount") or 0),
            "currency": str(obj.get("currency") or "eur").upper(), "code": obj.get("failure_code") or obj.get("failure_reason") or "",
            "message": obj.get("failure_message") or "", "charge": obj.get("charge") or ""}


async def replay(request: Request) -> Response:
    async with db(request) as session:
        await require(request, session, STAFF)
        event_id = request.path_params["event_id"]
        if not await reset_event(session, event_id):
            raise HTTPException(404)
    request.app.state.kick_events()
    flash(request, _("Événement %(id)s remis en traitement.", id=event_id), "success")
    return redirect_to(request, "stripe_overview")


routes = [
    Route("/admin/stripe", overview, name="stripe_overview"),
    Route("/admin/stripe/events/{event_id}/replay", replay, methods=["POST"], name="stripe_replay"),
]
