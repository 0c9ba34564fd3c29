"""Coworking's worker jobs: the credit notes that refunds and lost disputes call for, and the
unpaid joins forgotten."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete

from funding.coworking.credit_notes import issue_pending
from funding.coworking.models import Checkout, CheckoutStatus, JoinRequest, JoinStatus
from funding.db import Sessions, rowcount, transaction, utcnow
from funding.payments.calls import end_unknown_checkouts
from funding.settings import Settings
from funding.stripe_gateway import StripeGateway


async def end_unknown(sessions: Sessions, settings: Settings, gw: StripeGateway) -> int:
    """Subscription checkouts whose Checkout call had no answer follow it once the sweep has ended it."""
    return await end_unknown_checkouts(sessions, Checkout, "coworking-checkout", unknown=CheckoutStatus.UNKNOWN,
                                       opened=CheckoutStatus.OPEN, expired=CheckoutStatus.EXPIRED)


UNPAID_JOIN_KEPT = dt.timedelta(days=30)


async def forget_unpaid_joins(sessions: Sessions, settings: Settings, gw: StripeGateway) -> int:
    """A join never paid is forgotten after 30 days (its name, address and phone were given
    for a membership that did not happen). Its Checkout expired within 30 minutes, so no payment
    can come for it; a paid join is kept: it says which customer became which member."""
    async with transaction(sessions) as session:
        result = await session.execute(delete(JoinRequest).where(JoinRequest.status == JoinStatus.OPEN,
                                                                 JoinRequest.created_at < utcnow() - UNPAID_JOIN_KEPT))
    return rowcount(result)


JOBS = [
    ("coworking checkouts left unknown", end_unknown),
    ("coworking credit notes", issue_pending),
    ("coworking joins never paid", forget_unpaid_joins),
]
