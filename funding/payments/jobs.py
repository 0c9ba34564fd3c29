"""The payments' worker jobs."""

from __future__ import annotations

from funding.db import Sessions
from funding.payments.calls import end_unknown_checkouts
from funding.payments.models import Payment, PaymentStatus
from funding.settings import Settings
from funding.stripe_gateway import StripeGateway


async def end_unknown(sessions: Sessions, settings: Settings, gw: StripeGateway) -> int:
    """Payments whose Checkout call had no answer follow it once the sweep has ended it."""
    return await end_unknown_checkouts(sessions, Payment, "payment", unknown=PaymentStatus.UNKNOWN, opened=PaymentStatus.OPEN,
                                       expired=PaymentStatus.EXPIRED)


JOBS = [("payments left unknown", end_unknown)]
