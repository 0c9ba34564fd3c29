"""SEPA's pre-notification of a subscription's renewal debit (issue 18).

The SEPA Core rulebook has the creditor tell the debtor the amount and the day of each debit
before it is taken — 14 days before unless the mandate agrees a shorter delay. Our mandate
(Stripe's text, accepted on Checkout) agrees on notices "up to 2 days before" each debit.

- A renewal (a coworking plan, a recurring gift) is announced from Stripe's ``invoice.upcoming``,
  sent the account's "upcoming renewal events" number of days before it (7 days: the Billing
  setting we keep), once per subscription and period (email key ``sepa-notice:<sub>:<period_end>``),
  for subscriptions whose debit is a SEPA mandate still active; a card is not announced.
- The first debit of a subscription (at its Checkout) has no ``invoice.upcoming`` before it:
  coworking's at-debit notice (``coworking/debit_notice``, sent when the debit starts, days before
  the bank takes it) remains for it, and for any debit no upcoming notice announced — never both.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from funding.clock import local_date
from funding.i18n import gettext as _
from funding.mail.compose import recipient_locale, render
from funding.mail.models import Email
from funding.mail.service import enqueue
from funding.stripe_gateway import StripeGateway, stripe_id

log = logging.getLogger("funding.payments")

NOTICE_AT_LEAST_DAYS = 2  # the delay our mandate text agrees (Stripe's: "up to 2 days before")
UPCOMING_DAYS = 7  # the Stripe account's "upcoming renewal events" setting the notices come from
LIVE = ("active", "trialing", "past_due")


def checkout_note(methods: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """The pre-notification delay, stated beside the mandate on a Checkout that offers SEPA
    (``custom_text``); nothing when it does not."""
    if "sepa_debit" not in methods:
        return {}
    return {"custom_text": {"submit": {"message": _(
        "Prélèvement SEPA : chaque prélèvement vous est annoncé par e-mail (montant et date) au moins %(least)s jours "
        "avant d'être débité, et %(days)s jours avant chaque échéance suivante de votre abonnement ou de votre don.")
        % {"least": NOTICE_AT_LEAST_DAYS, "days": UPCOMING_DAYS}}}}


def subscription_of(invoice: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    details = (invoice.get("parent") or {}).get("subscription_details") or {}
    return stripe_id(details.get("subscription")), dict(details.get("metadata") or {})


def notice_key(subscription_id: str, invoice: dict[str, Any]) -> str | None:
    """The renewal an invoice (upcoming or made) is for: its subscription and the end of the period
    it closes (the moment of the renewal), the same for the preview and the invoice."""
    end = invoice.get("period_end")
    return f"sepa-notice:{subscription_id}:{int(end)}" if end else None


async def announced(session: AsyncSession, invoice: dict[str, Any]) -> bool:
    """Whether this invoice's debit was announced already from ``invoice.upcoming``."""
    sub_id, _meta = subscription_of(invoice)
    key = notice_key(sub_id, invoice) if sub_id else None
    return key is not None and await session.scalar(select(Email.id).where(Email.dedupe_key == key).limit(1)) is not None


async def upcoming_debit(gw: StripeGateway, invoice: dict[str, Any]) -> dict[str, Any] | None:
    """What an ``invoice.upcoming`` announces, when the renewal will be a SEPA debit under an active
    mandate and is still to come as announced (the subscription as it is now); else None."""
    from funding.coworking.mandates import debit_on_file

    sub_id, meta = subscription_of(invoice)
    amount = int(invoice.get("amount_due") or 0)
    if sub_id is None or amount <= 0 or notice_key(sub_id, invoice) is None:
        return None
    sub = await gw.retrieve("subscriptions", sub_id)
    items = (sub.get("items") or {}).get("data") or [{}]
    if (sub.get("status") not in LIVE or sub.get("cancel_at_period_end")
            or items[0].get("current_period_end") != invoice.get("period_end")):
        return None  # ends first, or the event is about a period already past
    debit = await debit_on_file(gw, stripe_id(sub.get("customer")), subscription_id=sub_id, quiet=False)
    if debit is None or not debit.active:
        return None
    when = int(invoice.get("next_payment_attempt") or invoice["period_end"])
    return {"object": "entrelab.upcoming_debit", "subscription": sub_id, "key": notice_key(sub_id, invoice),
            "purpose": meta.get("purpose") or "", "amount": amount,
            "currency": str(invoice.get("currency") or "eur").upper(), "day": local_date(when).isoformat(),
            "last4": debit.last4, "reference": debit.reference or ""}


async def send_notice(session: AsyncSession, facts: dict[str, Any]) -> bool:
    """The pre-notification email, once per subscription and period, to the member or the donor."""
    from funding.auth.models import User
    from funding.coworking.models import Member, Plan, Subscription
    from funding.donations.models import GiftInterval, RecurringGift

    about: dict[str, Any] = {"amount": facts["amount"], "currency": facts["currency"], "day": dt.date.fromisoformat(facts["day"]),
                             "last4": facts["last4"], "reference": facts["reference"]}
    gift = await session.scalar(select(RecurringGift).where(RecurringGift.stripe_subscription_id == facts["subscription"]))
    if gift is not None:
        locale = await recipient_locale(session, email=gift.email)
        await enqueue(session, to=gift.email, org_id=gift.org_id, dedupe_key=facts["key"],
                      **render("payments/debit_upcoming", locale, name=gift.name, gift=gift.id,
                               monthly=gift.interval == GiftInterval.MONTH, plan="", path="/mes-contributions", **about))
        return True
    sub = await session.scalar(select(Subscription).where(Subscription.stripe_subscription_id == facts["subscription"]))
    if sub is None:
        log.info("upcoming debit of %s: no gift nor member subscription of ours", facts["subscription"])
        return False
    member = await session.get(Member, sub.member_id)
    user = await session.get(User, member.user_id) if member is not None else None
    if member is None or user is None:
        return False
    plan = await session.get(Plan, sub.plan_id) if sub.plan_id else None
    await enqueue(session, to=user.email, user_id=user.id, org_id=member.org_id, dedupe_key=facts["key"],
                  **render("payments/debit_upcoming", user.locale, name=user.name, gift=None, monthly=False,
                           plan=plan.name if plan is not None else "", path="/membre", **about))
    return True
