"""Coworking's worker jobs: the credit notes that refunds and lost disputes call for."""

from __future__ import annotations

from funding.coworking.credit_notes import issue_pending
from funding.coworking.models import Checkout, CheckoutStatus
from funding.db import Sessions
from funding.payments.calls import end_unknown_checkouts
from funding.settings import Settings
from funding.stripe_gateway import StripeGateway


async def end_unknown(sessions: Sessions, settings: Settings, gw: StripeGateway) -> int:
    """Subscription checkouts whose Checkout call had no answer follow it once the sweep has ended it."""
    return await end_unknown_checkouts(sessions, Checkout, "coworking-checkout", unknown=CheckoutStatus.UNKNOWN,
                                       opened=CheckoutStatus.OPEN, expired=CheckoutStatus.EXPIRED)


JOBS = [
    ("coworking checkouts left unknown", end_unknown),
    ("coworking credit notes", issue_pending),
]
