"""The donations' worker jobs."""

from __future__ import annotations

from funding.db import Sessions
from funding.donations.annual import january
from funding.donations.models import GiftStatus, RecurringGift
from funding.payments.calls import end_unknown_checkouts
from funding.settings import Settings
from funding.stripe_gateway import StripeGateway


async def end_unknown(sessions: Sessions, settings: Settings, gw: StripeGateway) -> int:
    """Recurring gifts whose Checkout call had no answer follow it once the sweep has ended it."""
    return await end_unknown_checkouts(sessions, RecurringGift, "recurring-gift", unknown=GiftStatus.UNKNOWN,
                                       opened=GiftStatus.OPEN, expired=GiftStatus.EXPIRED)


JOBS = [("recurring gifts left unknown", end_unknown), ("annual receipts of recurring gifts", january)]
