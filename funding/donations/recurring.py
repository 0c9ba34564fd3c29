"""Recurring gifts: a monthly or yearly gift of a chosen amount, through Stripe Checkout in
``subscription`` mode.

- The price: one Stripe Product per organisation for recurring gifts, one Price per amount,
  interval and currency (``create_once``: both are created once, keyed by what they are).
- The gift: its row is committed first (``created``), then its Checkout session, keyed by the
  gift's id (``recurring-gift:<id>``); Checkout makes a customer of its own for the donor
  (``customer_email``), so a donor who is also a coworking member never gets a gift on the
  member's invoices.
- Paid by card or by SEPA Direct Debit (``METHODS``). A debit is ``processing`` for days: the
  subscription (so the gift) stays ``incomplete`` until its first invoice is paid, and nothing is
  booked until Stripe settles (the balance transaction appears only then). A first debit refused
  late ends the subscription (``incomplete_expired``) and the donor is told once, with the bank's
  reason; a later one is a failed attempt like a card's.
- Its state is its subscription's, mirrored forwards only (``version``).
- Each paid invoice is an instalment, once (unique invoice id); its money is booked from the
  charge's balance transaction by the payments' books, under this purpose: [ST] D 5115 net ·
  D 627 fee · C 75411, funding source crowdfunding, tagged with the donor's site — as a
  one-off gift is.
- A failed attempt emails the donor once per attempt; the donor stops the gift from the
  backer space (the subscription is cancelled at once: no later debit).
- From the backer space the donor also changes the amount (the item moves to the Price of the
  new amount, ``proration_behavior=none``: from the next instalment) or skips the next
  instalment (``pause_collection``, behavior ``void``, until ``SKIP_MARGIN`` after that billing
  date: Stripe voids its invoice and resumes by itself). Each change is a row first
  (``recurring_gift_changes``), whose id keys the update; the gift mirrors the new amount and
  the pause from the subscription only once Stripe confirmed (the update's answer, or the
  subscription fetched after its event), and the donor gets one email per change. Nothing is
  booked until an instalment is paid: a skipped one books nothing.

No tax receipt per instalment: January's annual receipt (funding/donations/annual.py) sums a
donor's year, recurring and one-off gifts; an instalment paid after it is added to it.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from funding.clock import local_day, paris_today
from funding.db import Sessions, digits, insert_ignore, rowcount, transaction, utcnow
from funding.donations import annual
from funding.donations.models import (
    SKIP_MARGIN,
    GiftChangeKind,
    GiftChangeStatus,
    GiftInterval,
    GiftStatus,
    RecurringGift,
    RecurringGiftChange,
    RecurringGiftPayment,
)
from funding.errors import FundingError
from funding.i18n import gettext as _
from funding.i18n import money
from funding.ledger.models import FundingSource
from funding.ledger.service import Line
from funding.mail.compose import recipient_locale, render
from funding.mail.service import enqueue
from funding.orgs.models import Site
from funding.payments import prenotice, purposes
from funding.payments.calls import create_once, idempotency_key, key_prefix
from funding.payments.service import checkout_expiry
from funding.stripe_gateway import StripeGateway, StripeRefused, StripeUnknown, stripe_id

PURPOSE = "recurring_gift"
MAX_AMOUNT = 1_000_000  # 10 000,00 € an instalment, as a one-off gift
CURRENCY = "EUR"
# Below these, Stripe's fixed fee (0,25 €) eats too much of each instalment.
MIN_AMOUNT = {GiftInterval.MONTH: 500, GiftInterval.YEAR: 2000}
INTERVALS = {GiftInterval.MONTH: "mensuel", GiftInterval.YEAR: "annuel"}
METHODS = ("card", "sepa_debit")
PRE_STRIPE = (GiftStatus.CREATED, GiftStatus.OPEN, GiftStatus.UNKNOWN)
STOPPABLE = (GiftStatus.ACTIVE, GiftStatus.PAST_DUE, GiftStatus.TRIALING, GiftStatus.UNPAID, GiftStatus.INCOMPLETE,
             GiftStatus.PAUSED)
CHANGEABLE = (GiftStatus.ACTIVE, GiftStatus.PAST_DUE, GiftStatus.TRIALING)  # a new amount: a running gift
SKIPPABLE = (GiftStatus.ACTIVE, GiftStatus.TRIALING)  # a skip: a gift whose instalments are paid up


class GiftError(FundingError):
    """A refused gift; the message is for a person."""

    status = 400


def check_gift(amount: int, interval: str, currency: str = CURRENCY) -> GiftInterval:
    """The interval of a valid gift, or GiftError saying what is wrong (nothing is created before)."""
    if currency.upper() != CURRENCY:
        raise GiftError(_("Les dons réguliers se font en euros."))
    try:
        every = GiftInterval(interval)
    except ValueError:
        raise GiftError(_("Choisissez un don mensuel ou annuel.")) from None
    if amount < MIN_AMOUNT[every] or amount > MAX_AMOUNT:
        raise GiftError(_("Un don régulier doit être compris entre %(min)s et %(max)s.",
                          min=money(MIN_AMOUNT[every]), max=money(MAX_AMOUNT)))
    return every


def gift_metadata(gift: RecurringGift) -> dict[str, str]:
    return {"purpose": PURPOSE, "recurring_gift_id": str(gift.id), "org_id": str(gift.org_id), "site_id": str(gift.site_id)}


async def gift_price(sessions: Sessions, gw: StripeGateway, org_id: int, interval: GiftInterval, amount: int,
                     currency: str = CURRENCY) -> str:
    """The Stripe Price of this amount and interval (its Product: the organisation's recurring
    gifts), each created once."""
    product = await create_once(sessions, gw, ref=f"recurring-gift-product:{org_id}", resource="products",
                                params={"name": "Don régulier à Entre-Lab", "metadata": {"purpose": PURPOSE, "org_id": str(org_id)}})
    price = await create_once(
        sessions, gw, ref=f"recurring-gift-price:{org_id}:{interval.value}:{currency.lower()}:{amount}", resource="prices",
        params={"product": product["id"], "currency": currency.lower(), "unit_amount": amount,
                "recurring": {"interval": interval.value}, "nickname": f"Don {INTERVALS[interval]} {amount}",
                "metadata": {"purpose": PURPOSE, "org_id": str(org_id)}})
    return str(price["id"])



async def start_recurring(sessions: Sessions, gw: StripeGateway, *, site: Site, amount: int, interval: str, email: str,
                          name: str, donor: dict[str, str | None] | None, success_url: str, cancel_url: str,
                          currency: str = CURRENCY) -> tuple[RecurringGift, str]:
    """Record the gift, then open its Checkout session (``subscription`` mode). Returns (gift, url)."""
    every = check_gift(amount, interval, currency)
    price_id = await gift_price(sessions, gw, site.org_id, every, amount, currency)
    async with transaction(sessions) as session:
        gift = RecurringGift(org_id=site.org_id, site_id=site.id, amount=amount, currency=currency.upper(), interval=every,
                             email=email, name=name, status=GiftStatus.CREATED, **(donor or {}))
        session.add(gift)
        await session.flush()
    meta = gift_metadata(gift)
    description = f"Don {INTERVALS[every]} à {site.name}"[:200]
    params = {
        "mode": "subscription",
        "line_items": [{"price": price_id, "quantity": 1}],
        "allowed_payment_method_types": list(METHODS),  # a card, or a SEPA Direct Debit (euros only, as gifts are)
        "customer_email": email,
        "subscription_data": {"metadata": meta, "description": description},
        "metadata": meta,
        "success_url": success_url,
        "cancel_url": cancel_url,
        "locale": "fr",
        "expires_at": checkout_expiry(),
        **prenotice.checkout_note(METHODS),
    }
    try:
        checkout = await create_once(sessions, gw, ref=f"recurring-gift:{gift.id}", resource="checkout.sessions", params=params)
    except StripeUnknown:
        async with transaction(sessions) as session:
            await session.execute(update(RecurringGift).where(RecurringGift.id == gift.id, RecurringGift.status == GiftStatus.CREATED)
                                  .values(status=GiftStatus.UNKNOWN))
        raise
    async with transaction(sessions) as session:
        await session.execute(update(RecurringGift).where(RecurringGift.id == gift.id, RecurringGift.status.in_(PRE_STRIPE))
                              .values(status=GiftStatus.OPEN, checkout_session_id=checkout["id"]))
    gift.checkout_session_id = checkout["id"]
    return gift, str(checkout["url"])



def is_gift(obj: dict[str, Any]) -> bool:
    return (obj.get("metadata") or {}).get("purpose") == PURPOSE


async def _gift_of(session: AsyncSession, *, subscription_id: str | None, metadata: dict[str, Any],
                   checkout_id: str | None = None) -> RecurringGift | None:
    if subscription_id:
        gift = await session.scalar(select(RecurringGift).where(RecurringGift.stripe_subscription_id == subscription_id))
        if gift is not None:
            return gift
    if checkout_id:
        gift = await session.scalar(select(RecurringGift).where(RecurringGift.checkout_session_id == checkout_id))
        if gift is not None:
            return gift
    raw = str(metadata.get("recurring_gift_id") or "")
    return await session.get(RecurringGift, int(raw)) if digits(raw) else None


async def apply_subscription(session: AsyncSession, sub: dict[str, Any], version: int) -> RecurringGift | None:
    """Mirror a gift's subscription (as fetched) into its row, if not older than what we hold."""
    if not is_gift(sub):
        return None
    gift = await _gift_of(session, subscription_id=sub["id"], metadata=sub.get("metadata") or {})
    if gift is None:
        return None
    status = GiftStatus(sub["status"])
    values: dict[str, Any] = {"status": status, "stripe_subscription_id": sub["id"],
                              "stripe_customer_id": stripe_id(sub.get("customer")), "version": version}
    if status == GiftStatus.CANCELED:
        values["canceled_at"] = utcnow()
    amount = _subscription_amount(sub)
    if amount > 0 and str(sub.get("currency") or gift.currency).upper() == gift.currency:
        values["amount"] = amount
    pause = sub.get("pause_collection") or {}
    values["collection_resumes_at"] = _naive(int(pause["resumes_at"])) if pause.get("resumes_at") else None
    await session.execute(update(RecurringGift).where(RecurringGift.id == gift.id, RecurringGift.version <= version)
                          .values(**values).execution_options(synchronize_session=False))
    await session.refresh(gift)
    await _settle_changes(session, gift)
    return gift


def _subscription_amount(sub: dict[str, Any]) -> int:
    """What each instalment takes: the items' prices (the price comes with each item)."""
    total = 0
    for item in (sub.get("items") or {}).get("data") or []:
        price = item.get("price")
        if not isinstance(price, dict) or price.get("unit_amount") is None:
            return 0  # not the whole picture: keep what we hold
        total += int(price["unit_amount"]) * int(item.get("quantity") or 1)
    return total


async def _settle_changes(session: AsyncSession, gift: RecurringGift) -> None:
    """The donor's changes that the gift now shows (as Stripe holds it) are applied, once each,
    and each is confirmed to the donor by email."""
    waiting = (await session.scalars(select(RecurringGiftChange).where(
        RecurringGiftChange.gift_id == gift.id,
        RecurringGiftChange.status.in_((GiftChangeStatus.REQUESTED, GiftChangeStatus.UNKNOWN)))
        .order_by(RecurringGiftChange.id))).all()
    for change in waiting:
        done = (gift.amount == change.amount if change.kind == GiftChangeKind.AMOUNT
                else gift.collection_resumes_at is not None and gift.collection_resumes_at == change.resumes_at)
        if not done:
            continue
        settled = await session.execute(update(RecurringGiftChange).where(
            RecurringGiftChange.id == change.id, RecurringGiftChange.status.in_((GiftChangeStatus.REQUESTED, GiftChangeStatus.UNKNOWN)))
            .values(status=GiftChangeStatus.APPLIED, applied_at=utcnow()).execution_options(synchronize_session=False))
        if rowcount(settled):
            await _confirm(session, gift, change)


async def _confirm(session: AsyncSession, gift: RecurringGift, change: RecurringGiftChange) -> None:
    """The donor's change is in force: one email, in the donor's language."""
    site = await session.get(Site, gift.site_id)
    skipped = change.kind != GiftChangeKind.AMOUNT
    await enqueue(session, to=gift.email, org_id=gift.org_id, dedupe_key=f"recurring-gift-change:{change.id}",
                  **render("donations/gift_changed", await recipient_locale(session, email=gift.email), name=gift.name,
                           number=gift.id, site=site.name if site is not None else "", monthly=gift.interval == GiftInterval.MONTH,
                           skipped=skipped, day=local_day(change.instalment_at), currency=gift.currency,
                           amount=gift.amount if skipped else change.amount or gift.amount,
                           previous=None if skipped else change.previous_amount))


async def apply_checkout(session: AsyncSession, checkout: dict[str, Any], version: int) -> RecurringGift | None:
    """A gift's Checkout session (its subscription expanded, or its id): complete ties the
    subscription to the gift; expired ends a gift that never started."""
    if checkout.get("mode") != "subscription" or not is_gift(checkout):
        return None
    sub = checkout.get("subscription")
    gift = await _gift_of(session, subscription_id=stripe_id(sub), metadata=checkout.get("metadata") or {}, checkout_id=checkout["id"])
    if gift is None:
        return None
    if checkout.get("status") == "complete" and sub:
        await session.execute(update(RecurringGift).where(RecurringGift.id == gift.id, RecurringGift.stripe_subscription_id.is_(None))
                              .values(stripe_subscription_id=stripe_id(sub), checkout_session_id=checkout["id"]))
        if isinstance(sub, dict):
            return await apply_subscription(session, sub, version)
    elif checkout.get("status") == "expired":
        await session.execute(update(RecurringGift).where(RecurringGift.id == gift.id, RecurringGift.status.in_(PRE_STRIPE))
                              .values(status=GiftStatus.EXPIRED))
    await session.refresh(gift)
    return gift


def subscription_of_invoice(invoice: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    details = (invoice.get("parent") or {}).get("subscription_details") or {}
    return stripe_id(details.get("subscription")), dict(details.get("metadata") or {})


def failure_reason(payment_intent: dict[str, Any] | None) -> str | None:
    """Why the bank refused a debit (or a card), as Stripe codes it: the email says it in words."""
    error = (payment_intent or {}).get("last_payment_error") or {}
    code = error.get("code")
    return str(code) if code else None


def invoice_payment_intent(invoice: dict[str, Any]) -> str | None:
    """The PaymentIntent of an invoice's latest payment attempt (its ``payments`` expanded)."""
    payments = (invoice.get("payments") or {}).get("data") or []
    ids = [stripe_id((p.get("payment") or {}).get("payment_intent")) for p in payments]
    return next((i for i in reversed(ids) if i), None)


async def apply_invoice(session: AsyncSession, event_type: str, invoice: dict[str, Any], attempt: int,
                        reason: str | None = None, *, debit: dict[str, Any] | None = None) -> RecurringGift | None:
    """A gift's invoice, as fetched: paid → an instalment, once (the first thanks the donor);
    a failed attempt → one email per attempt, with the bank's reason (``reason``: Stripe's code).
    The first invoice's debit failing (SEPA: days after Checkout) ends the attempt: the gift
    never started, and the donor is told once."""
    sub_id, meta = subscription_of_invoice(invoice)
    if meta.get("purpose") != PURPOSE:
        return None
    gift = await _gift_of(session, subscription_id=sub_id, metadata=meta)
    if gift is None:
        return None
    if sub_id and gift.stripe_subscription_id is None:
        await session.execute(update(RecurringGift).where(RecurringGift.id == gift.id, RecurringGift.stripe_subscription_id.is_(None))
                              .values(stripe_subscription_id=sub_id))
        set_committed_value(gift, "stripe_subscription_id", sub_id)
    site = await session.get(Site, gift.site_id)
    site_name = site.name if site is not None else ""
    if invoice.get("status") == "paid" and int(invoice.get("amount_paid") or 0) > 0:
        payments = ((invoice.get("payments") or {}).get("data") or [])
        pi_id = next((stripe_id((p.get("payment") or {}).get("payment_intent")) for p in payments if p.get("status") == "paid"), None)
        paid_at = (invoice.get("status_transitions") or {}).get("paid_at")
        inserted = await insert_ignore(session, RecurringGiftPayment, {
            "org_id": gift.org_id, "gift_id": gift.id, "stripe_invoice_id": invoice["id"], "payment_intent_id": pi_id,
            "amount": int(invoice["amount_paid"]), "currency": str(invoice.get("currency") or gift.currency).upper(),
            "paid_at": utcnow() if not paid_at else _naive(int(paid_at))}, ["stripe_invoice_id"])
        if inserted is not None:  # an instalment of a year whose annual receipt is issued (paid late): added to it
            paid = local_day(_naive(int(paid_at))).year if paid_at else paris_today().year
            await annual.refresh(session, gift.org_id, gift.email, paid, reason=annual.ADDED)
            await enqueue(session, to=gift.email, org_id=gift.org_id, dedupe_key=f"recurring-gift:{gift.id}:thanks",
                          **render("donations/recurring_thanks", await recipient_locale(session, email=gift.email),
                                   name=gift.name, monthly=gift.interval == GiftInterval.MONTH, amount=gift.amount,
                                   currency=gift.currency, site=site_name, number=gift.id))
    elif (event_type == "invoice.payment_failed" and invoice.get("billing_reason") == "subscription_create"
          and not invoice.get("next_payment_attempt")):
        # The first invoice is never retried: its failure ends the subscription (incomplete_expired). The invoice
        # may already be void when fetched: the email is the gift's, once.
        await enqueue(session, to=gift.email, org_id=gift.org_id, dedupe_key=f"recurring-gift:{gift.id}:not-started",
                      **render("donations/recurring_not_started", await recipient_locale(session, email=gift.email),
                               name=gift.name, monthly=gift.interval == GiftInterval.MONTH, amount=gift.amount,
                               currency=gift.currency, site=site_name, number=gift.id, reason=reason))
    elif (debit is not None and invoice.get("status") == "open" and event_type != "invoice.payment_failed"
          and not await prenotice.announced(session, invoice)):
        # SEPA's pre-notification of a debit not announced days before by invoice.upcoming (the first one,
        # whose day Checkout's mandate page stated too): its amount and day, once per debit.
        day = dt.date.fromisoformat(debit["date"]) if debit.get("date") else paris_today()
        await enqueue(session, to=gift.email, org_id=gift.org_id, dedupe_key=f"recurring-gift:{invoice['id']}:debit:{debit['payment_intent']}",
                      **render("payments/debit_upcoming", await recipient_locale(session, email=gift.email), name=gift.name,
                               gift=gift.id, monthly=gift.interval == GiftInterval.MONTH, plan="", path="/mes-contributions",
                               amount=debit["amount"], currency=debit["currency"], day=day, last4=debit.get("last4") or "",
                               reference=""))
    elif event_type == "invoice.payment_failed" and invoice.get("status") == "open":
        retry = invoice.get("next_payment_attempt")
        await enqueue(session, to=gift.email, org_id=gift.org_id, dedupe_key=f"recurring-gift:{invoice['id']}:failed:{attempt}",
                      **render("donations/recurring_failed", await recipient_locale(session, email=gift.email), name=gift.name,
                               due=int(invoice.get("amount_remaining") or invoice.get("amount_due") or gift.amount),
                               currency=gift.currency, number=gift.id, site=site_name,
                               retry=local_day(_naive(int(retry))) if retry else None,
                               link=invoice.get("hosted_invoice_url") or "", reason=reason))
    await session.refresh(gift)
    return gift


def _naive(unix: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(unix, dt.UTC).replace(tzinfo=None)


async def allocate(session: AsyncSession, metadata: dict, amount: int, currency: str) -> purposes.Allocation | None:
    """An instalment's charge (or its refund): a gift, 75411, on the donor's site."""
    raw = str(metadata.get("site_id") or "")
    site = await session.get(Site, int(raw)) if digits(raw) else None
    if site is None:
        return None
    return purposes.Allocation(
        org_id=site.org_id, site_id=site.id, funding_source=FundingSource.CROWDFUNDING,
        label=f"Don régulier n° {metadata.get('recurring_gift_id', '?')} ({metadata.get('invoice', '')}) — {site.name}"[:200],
        lines=[Line("75411", -amount, currency)],
    )


async def gifts_of(session: AsyncSession, email: str) -> list[RecurringGift]:
    """An address's recurring gifts, newest first (the backer space)."""
    return list((await session.scalars(select(RecurringGift).where(RecurringGift.email == email,
                                                                   RecurringGift.status.not_in((*PRE_STRIPE, GiftStatus.EXPIRED)))
                                       .order_by(RecurringGift.id.desc()))).all())


async def stop(sessions: Sessions, gw: StripeGateway, *, gift_id: int, email: str) -> RecurringGift:
    """The donor stops their gift: its subscription is cancelled at once (no later debit)."""
    async with sessions() as session:
        gift = await session.get(RecurringGift, gift_id)
    if gift is None or gift.email != email:
        raise LookupError("not this donor's gift")
    if gift.status not in STOPPABLE or not gift.stripe_subscription_id:
        raise GiftError(_("Ce don régulier est déjà arrêté."))
    try:
        sub = await gw.call("subscriptions", "cancel", gift.stripe_subscription_id)
    except StripeRefused as exc:
        if exc.http_status != 404:
            raise
        sub = await gw.retrieve("subscriptions", gift.stripe_subscription_id)
    async with transaction(sessions) as session:
        stopped = await apply_subscription(session, sub, max(gift.version, int(sub.get("created") or 0)) + 1)
    return stopped or gift


async def _own_gift(sessions: Sessions, gift_id: int, email: str) -> RecurringGift:
    async with sessions() as session:
        gift = await session.get(RecurringGift, gift_id)
    if gift is None or gift.email != email:
        raise LookupError("not this donor's gift")
    if gift.status not in STOPPABLE or not gift.stripe_subscription_id:
        raise GiftError(_("Ce don régulier est arrêté : il ne peut plus être modifié."))
    return gift


async def _live_subscription(sessions: Sessions, gw: StripeGateway, gift: RecurringGift) -> dict[str, Any]:
    """The gift's subscription as Stripe holds it now; a gift Stripe has ended is mirrored and refused."""
    sub = await gw.retrieve("subscriptions", str(gift.stripe_subscription_id))
    if GiftStatus(sub["status"]) not in CHANGEABLE:
        async with transaction(sessions) as session:
            await apply_subscription(session, sub, await _answer_version(session, gift.id))
        raise GiftError(_("Ce don régulier est arrêté : il ne peut plus être modifié.")
                        if sub["status"] in ("canceled", "incomplete_expired")
                        else _("Ce don ne peut pas être modifié tant qu'un versement reste impayé."))
    return sub


async def _answer_version(session: AsyncSession, gift_id: int) -> int:
    """The version of a subscription Stripe just answered with: the current state, so newer than
    what we hold, and strictly (an event's handler may have fetched it a moment before, in the
    same second; it applies after us and must lose the tie)."""
    held = await session.scalar(select(RecurringGift.version).where(RecurringGift.id == gift_id))
    return max(int(time.time()), int(held or 0)) + 1


async def _request_change(sessions: Sessions, gw: StripeGateway, gift: RecurringGift, change: RecurringGiftChange,
                          params: dict[str, Any]) -> RecurringGift:
    """Record the change, ask Stripe under a key derived from it, mirror the answer."""
    async with transaction(sessions) as session:
        session.add(change)
        await session.flush()
    key = idempotency_key(f"recurring-gift-change:{change.id}", "subscriptions", 1, await key_prefix(sessions, gw))
    try:
        sub = await gw.call("subscriptions", "update", str(gift.stripe_subscription_id), params=params, key=key)
    except (StripeRefused, StripeUnknown) as exc:
        status = GiftChangeStatus.REFUSED if isinstance(exc, StripeRefused) else GiftChangeStatus.UNKNOWN
        async with transaction(sessions) as session:
            await session.execute(update(RecurringGiftChange).where(RecurringGiftChange.id == change.id,
                                                                    RecurringGiftChange.status == GiftChangeStatus.REQUESTED)
                                  .values(status=status))
        raise
    async with transaction(sessions) as session:
        mirrored = await apply_subscription(session, sub, await _answer_version(session, gift.id))
    return mirrored or gift


async def change_amount(sessions: Sessions, gw: StripeGateway, *, gift_id: int, email: str, amount: int) -> RecurringGift:
    """The donor's new amount, from the next instalment on (same bounds as a new gift). Nothing is
    asked of Stripe, nor written, for a refused amount."""
    gift = await _own_gift(sessions, gift_id, email)
    if gift.status not in CHANGEABLE:
        raise GiftError(_("Ce don ne peut pas être modifié tant qu'un versement reste impayé."))
    check_gift(amount, gift.interval, gift.currency)
    if amount == gift.amount:
        raise GiftError(_("Votre don est déjà de %(amount)s.", amount=money(amount, gift.currency)))
    sub = await _live_subscription(sessions, gw, gift)
    price_id = await gift_price(sessions, gw, gift.org_id, gift.interval, amount, gift.currency)
    item = sub["items"]["data"][0]
    change = RecurringGiftChange(org_id=gift.org_id, gift_id=gift.id, kind=GiftChangeKind.AMOUNT, amount=amount,
                                 previous_amount=gift.amount, instalment_at=_naive(int(item["current_period_end"])),
                                 status=GiftChangeStatus.REQUESTED)
    return await _request_change(sessions, gw, gift, change,
                                 {"items": [{"id": item["id"], "price": price_id}], "proration_behavior": "none"})


async def skip_next(sessions: Sessions, gw: StripeGateway, *, gift_id: int, email: str) -> RecurringGift:
    """The donor skips the next instalment: collection paused (its invoice voided by Stripe) until
    just after that billing date; the gift then resumes by itself."""
    gift = await _own_gift(sessions, gift_id, email)
    if gift.collection_resumes_at is not None:
        raise GiftError(_("Le prochain versement de ce don est déjà sauté."))
    if gift.status not in SKIPPABLE:
        raise GiftError(_("Un versement ne peut être sauté que sur un don à jour de ses versements."))
    sub = await _live_subscription(sessions, gw, gift)
    if sub.get("pause_collection"):
        raise GiftError(_("Le prochain versement de ce don est déjà sauté."))
    billing = int(sub["items"]["data"][0]["current_period_end"])
    resumes = billing + int(SKIP_MARGIN.total_seconds())
    change = RecurringGiftChange(org_id=gift.org_id, gift_id=gift.id, kind=GiftChangeKind.SKIP, instalment_at=_naive(billing),
                                 resumes_at=_naive(resumes), status=GiftChangeStatus.REQUESTED)
    return await _request_change(sessions, gw, gift, change, {"pause_collection": {"behavior": "void", "resumes_at": resumes}})


async def portal_url(sessions: Sessions, gw: StripeGateway, *, gift_id: int, email: str, return_url: str) -> str:
    """A Billing Portal session of the gift's own customer: the donor changes the card (or stops)."""
    async with sessions() as session:
        gift = await session.get(RecurringGift, gift_id)
    if gift is None or gift.email != email:
        raise LookupError("not this donor's gift")
    if not gift.stripe_customer_id or gift.status not in STOPPABLE:
        raise GiftError(_("Ce don régulier est déjà arrêté."))
    portal = await create_once(sessions, gw, ref=f"recurring-gift-portal:{gift.id}:{secrets.token_hex(6)}",
                               resource="billing_portal.sessions", tag=False,
                               params={"customer": gift.stripe_customer_id, "return_url": return_url, "locale": "fr"})
    return str(portal["url"])


purposes.register(PURPOSE, allocate, bills_invoices=True)
