"""Recurring gifts and their instalments inserted directly, as the annual receipts' tests need them."""

from __future__ import annotations

import datetime as dt

from funding.donations.models import GiftStatus, RecurringGift, RecurringGiftPayment

ADDRESS = "3 rue Durolle\n63300 Thiers\nFrance"


async def recurring_gift(session, world, *, email, name, amount, interval="month", site_id=None, company=None, siren=None) -> RecurringGift:
    gift = RecurringGift(org_id=world.org_id, site_id=site_id or world.site_id, amount=amount, currency="EUR", interval=interval,
                         email=email, name=name, donor_address=ADDRESS, company_name=company,
                         company_siren=siren, status=GiftStatus.ACTIVE, stripe_subscription_id=f"sub_{email}_{amount}")
    session.add(gift)
    await session.flush()
    return gift


def instalment(session, gift, n: int, when: dt.datetime) -> None:
    """The ``n``-th instalment of ``gift``, paid at ``when`` (naive UTC); invoice ``in_<gift>_<n>``, PaymentIntent ``pi_<gift>_<n>``."""
    session.add(RecurringGiftPayment(org_id=gift.org_id, gift_id=gift.id, stripe_invoice_id=f"in_{gift.id}_{n}",
                                     payment_intent_id=f"pi_{gift.id}_{n}", amount=gift.amount, currency="EUR", paid_at=when))
