"""Applying what Stripe says to pledges, in the caller's transaction (no network here).

Every function is safe to call twice and in any order: the webhook, the backer's return
page, the deadline job and a sweep all end here, and each effect (state, totals, receipt,
email) happens once because it hangs on a conditional transition.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from funding.campaigns import mails, receipts
from funding.campaigns.models import IN_FLIGHT, Campaign, CampaignStatus, Mode, Nature, Pledge, PledgeStatus, Tier
from funding.campaigns.pledges import (
    GRACE,
    lock_campaign,
    move,
    record_refund,
    reload_pledge,
    retake_stock,
)
from funding.clock import local_day
from funding.db import digits, must_get, rowcount, utcnow
from funding.donations import annual
from funding.payments.models import Payment
from funding.payments.service import stripe_paid_at
from funding.payments.verify import check_row
from funding.stripe_gateway import stripe_id

log = logging.getLogger("funding.campaigns")


def _ref_id(value) -> int | None:
    text = str(value or "")
    return int(text) if digits(text) and len(text) < 18 else None


def pledge_id_of(obj: dict) -> int | None:
    return _ref_id((obj.get("metadata") or {}).get("pledge_id"))



async def _context(session: AsyncSession, pledge: Pledge) -> tuple[Campaign, Tier | None]:
    campaign = await must_get(session, Campaign, pledge.campaign_id)
    tier = await session.get(Tier, pledge.tier_id) if pledge.tier_id else None
    return campaign, tier


async def mark_paid(session: AsyncSession, pledge_id: int, *, payment_intent_id: str | None = None,
                    now: dt.datetime | None = None, paid_at: dt.datetime | None = None) -> Pledge | None:
    """The money is in: count it, issue the tax receipt of a gift, send the receipt email. Once.
    ``paid_at``: when Stripe took the money (the day the receipt states), default ``now``."""
    values: dict[str, str | dt.datetime | None] = {"payment_intent_id": payment_intent_id} if payment_intent_id else {}
    if paid_at is not None:
        values["paid_at"] = paid_at
    values.update(grace_until=None, last_error=None)
    pledge = await move(session, pledge_id, (PledgeStatus.PENDING,), PledgeStatus.PAID, now=now, **values)
    if pledge is None:
        pledge = await move(session, pledge_id, IN_FLIGHT, PledgeStatus.PAID, now=now, **values)
    if pledge is None:  # paid after we gave up on it (a late confirmation): the money is real, count it
        pledge = await move(session, pledge_id, (PledgeStatus.FAILED, PledgeStatus.EXPIRED, PledgeStatus.CANCELED), PledgeStatus.PAID, now=now, **values)
        if pledge is not None and not await retake_stock(session, pledge):
            log.warning("pledge %s paid after it released its reward: the tier is oversold by one", pledge_id)
            await session.execute(update(Pledge).where(Pledge.id == pledge_id).values(
                last_error="payée après annulation : contrepartie épuisée, à régler avec le contributeur"))
    if pledge is None:
        return None
    campaign, tier = await _context(session, pledge)
    receipt = None
    year = _annual_year(pledge, campaign)
    if year is not None and await annual.in_force(session, campaign.org_id, pledge.email, year) is not None:
        # a gift of a year whose annual receipt is issued (paid late): that receipt takes it in
        await annual.refresh(session, campaign.org_id, pledge.email, year, reason=annual.ADDED)
    else:
        receipt = await receipts.issue(session, pledge, now=now)
    await mails.paid(session, pledge, campaign, tier, receipt)
    return pledge


def _annual_year(pledge: Pledge, campaign: Campaign) -> int | None:
    """The year of a paid gift's annual receipt, if its donor may have one."""
    if pledge.nature != Nature.GIFT or pledge.paid_at is None or not pledge.email:
        return None
    return local_day(pledge.paid_at).year


async def on_payment_paid(session: AsyncSession, payment: Payment) -> None:
    """The paid hook of the ``pledge`` purpose (keep-it-all, Checkout in payment mode)."""
    pledge_id = _ref_id((payment.ref or "").removeprefix("pledge:"))
    if pledge_id is None:
        return
    await session.execute(update(Pledge).where(Pledge.id == pledge_id, Pledge.payment_id.is_(None)).values(payment_id=payment.id))
    await mark_paid(session, pledge_id, payment_intent_id=payment.payment_intent_id, paid_at=payment.paid_at)


async def expire(session: AsyncSession, pledge_id: int, reason: str) -> Pledge | None:
    """A Checkout that will never be paid: the reserved unit goes back to the tier."""
    return await move(session, pledge_id, (PledgeStatus.PENDING,), PledgeStatus.EXPIRED, last_error=reason[:500])


async def settle_setup_session(session: AsyncSession, checkout: dict, *, now: dt.datetime | None = None) -> Pledge | None:
    """An all-or-nothing backer's card, saved (or not) through Checkout in setup mode."""
    pledge_id = pledge_id_of(checkout)
    pledge = await session.get(Pledge, pledge_id) if pledge_id else None
    if pledge is None or pledge.checkout_session_id != checkout.get("id"):
        return None  # not ours, or an older card session the backer replaced
    if checkout.get("status") == "expired":
        return await expire(session, pledge.id, "session d'enregistrement de carte expirée") or pledge
    seti = checkout.get("setup_intent")
    if checkout.get("status") != "complete" or not isinstance(seti, dict) or seti.get("status") != "succeeded":
        return pledge
    card = {"customer_id": stripe_id(checkout.get("customer")) or pledge.customer_id,
            "payment_method_id": stripe_id(seti.get("payment_method"))}
    if pledge.status == PledgeStatus.PENDING:
        campaign = await lock_campaign(session, pledge.campaign_id)
        if campaign.status != CampaignStatus.LIVE or (now or utcnow()) >= campaign.ends_at:
            return await expire(session, pledge.id, "carte enregistrée après la fin de la campagne") or pledge
        moved = await move(session, pledge.id, (PledgeStatus.PENDING,), PledgeStatus.ACTIVE, now=now, **card)
        if moved is not None:
            campaign, tier = await _context(session, moved)
            await mails.card_saved(session, moved, campaign, tier)
        return moved or pledge
    # A replacement card (its session says which one): before the deadline it just replaces the
    # old one; after a decline the pledge goes back to the deadline job, which charges it. The
    # first session's news arriving late, or the same card again, changes nothing.
    number = _ref_id((checkout.get("metadata") or {}).get("card"))
    if number is None or number != pledge.card_sessions or card["payment_method_id"] == pledge.payment_method_id:
        return pledge
    result = await session.execute(update(Pledge).where(Pledge.id == pledge.id, Pledge.status.in_((PledgeStatus.ACTIVE, PledgeStatus.RETRY)),
                                                        Pledge.card_sessions == number)
                                   .values(updated_at=utcnow(), **card))
    moved = None
    if rowcount(result) == 0:
        moved = await move(session, pledge.id, (PledgeStatus.CARD_DECLINED, PledgeStatus.ACTION_REQUIRED), PledgeStatus.RETRY, now=now, **card)
    if rowcount(result) or moved is not None:
        pledge = await reload_pledge(session, pledge.id)
        campaign, _tier = await _context(session, pledge)
        await mails.new_card(session, pledge, campaign)
    return pledge


def _charge_error(pi: dict) -> dict:
    return pi.get("last_payment_error") or {}


def needs_authentication(pi: dict, code: str | None = None, decline_code: str | None = None) -> bool:
    error = _charge_error(pi)
    codes = {code, decline_code, error.get("code"), error.get("decline_code")}
    return pi.get("status") == "requires_action" or "authentication_required" in codes


async def settle_charge(session: AsyncSession, pi: dict, *, code: str | None = None, decline_code: str | None = None,
                        now: dt.datetime | None = None) -> Pledge | None:
    """An off-session (or on-session) PaymentIntent of an all-or-nothing pledge."""
    pledge_id = pledge_id_of(pi)
    pledge = await session.get(Pledge, pledge_id) if pledge_id else None
    if pledge is None or "payment_id" in (pi.get("metadata") or {}):
        return None  # keep-it-all payments settle through their Payment
    now = now or utcnow()
    status = pi.get("status")
    if status == "succeeded":
        if pledge.status == PledgeStatus.PAID and pledge.payment_intent_id not in (None, pi["id"]):
            log.warning("pledge %s paid twice (%s and %s): refund one", pledge.id, pledge.payment_intent_id, pi["id"])
            await session.execute(update(Pledge).where(Pledge.id == pledge.id).values(
                last_error=f"payée deux fois ({pledge.payment_intent_id} et {pi['id']}) : rembourser l'un des deux"))
            return pledge
        if pledge.status != PledgeStatus.PAID:
            check_row(pledge.id, pledge.amount, pledge.currency, pi, id_key="pledge_id", what="don",
                      customer=pledge.customer_id)
        return await mark_paid(session, pledge.id, payment_intent_id=pi["id"], now=now, paid_at=stripe_paid_at(pi))
    attempt = _ref_id((pi.get("metadata") or {}).get("attempt"))
    if attempt is not None and attempt != pledge.charge_attempt:
        return pledge  # news about an earlier attempt: the pledge has moved on
    if status in ("processing", "requires_capture"):
        return pledge
    # The week of grace runs from the charge (the job's claim), whoever learns of the refusal first:
    # Stripe's webhook may beat the job to its own answer.
    grace = pledge.grace_until or (pledge.claimed_at or now) + GRACE
    error = _charge_error(pi)
    message = (error.get("message") or code or "")[:500]
    if needs_authentication(pi, code, decline_code):
        moved = await move(session, pledge.id, (PledgeStatus.CHARGING,), PledgeStatus.ACTION_REQUIRED, now=now, payment_intent_id=pi["id"],
                           grace_until=grace, last_error=message or "authentification demandée")
        if moved is not None:
            campaign, _tier = await _context(session, moved)
            await mails.authentication_needed(session, moved, campaign)
        return moved or pledge
    if status in ("requires_payment_method", "canceled") or code:
        moved = await move(session, pledge.id, (PledgeStatus.CHARGING,), PledgeStatus.CARD_DECLINED, now=now, payment_intent_id=pi["id"],
                           grace_until=grace, last_error=message or "carte refusée")
        if moved is not None:
            campaign, _tier = await _context(session, moved)
            await mails.card_declined(session, moved, campaign)
        return moved or pledge
    return pledge


async def fail_after_grace(session: AsyncSession, pledge_id: int, now: dt.datetime) -> Pledge | None:
    pledge = await move(session, pledge_id, (PledgeStatus.CARD_DECLINED, PledgeStatus.ACTION_REQUIRED), PledgeStatus.FAILED, now=now,
                        last_error="délai de paiement dépassé")
    if pledge is not None:
        campaign, _tier = await _context(session, pledge)
        await mails.pledge_failed(session, pledge, campaign)
    return pledge


async def cancel(session: AsyncSession, pledge_id: int, now: dt.datetime | None = None) -> Pledge | None:
    """The backer withdraws an all-or-nothing promise before the deadline (nothing was charged)."""
    now = now or utcnow()
    pledge = await session.get(Pledge, pledge_id)
    if pledge is None:
        return None
    campaign = await must_get(session, Campaign, pledge.campaign_id)
    if campaign.mode != Mode.ALL_OR_NOTHING or campaign.status != CampaignStatus.LIVE or now >= campaign.ends_at:
        return None
    moved = await move(session, pledge_id, (PledgeStatus.ACTIVE,), PledgeStatus.CANCELED, now=now)
    if moved is None:
        moved = await move(session, pledge_id, (PledgeStatus.PENDING,), PledgeStatus.CANCELED, now=now)
    if moved is not None:
        await mails.cancelled(session, moved, campaign)
    return moved


async def apply_refund(session: AsyncSession, pledge_id: int, refunded_total: int, *, reason: str = "remboursement") -> int:
    """Stripe's total taken back from a pledge's charge (refunds, and a lost dispute's amount):
    totals down, receipt voided or reissued, backer told of a refund (a lost dispute is their
    bank's doing: the bank tells them)."""
    delta = await record_refund(session, pledge_id, refunded_total)
    if delta <= 0:
        return 0
    pledge = await reload_pledge(session, pledge_id)
    campaign, _tier = await _context(session, pledge)
    receipt = None
    year = _annual_year(pledge, campaign)
    if year is not None and await annual.in_force(session, campaign.org_id, pledge.email, year) is not None:
        await annual.refresh(session, campaign.org_id, pledge.email, year, reason=reason)  # the annual receipt states it
    elif pledge.nature == Nature.GIFT:
        receipt = await receipts.void_and_reissue(session, pledge, receipts.void_reason(reason, delta, pledge.currency))
    if reason == "remboursement":
        await mails.refunded(session, pledge, campaign, delta, receipt)
    return delta


async def void_campaign(session: AsyncSession, campaign: Campaign, now: dt.datetime) -> int:
    """All-or-nothing goal missed: nobody is charged, every backer is told. Pledges stay in the
    totals (as void) so the page shows where the campaign ended."""
    voided = (await session.execute(
        update(Pledge).where(Pledge.campaign_id == campaign.id, Pledge.status == PledgeStatus.ACTIVE)
        .values(status=PledgeStatus.VOID, ended_at=now, updated_at=now).returning(Pledge.id)
    )).scalars().all()
    for pledge_id in voided:
        pledge = await reload_pledge(session, pledge_id)
        await mails.campaign_failed(session, pledge, campaign)
    pending = (await session.scalars(select(Pledge.id).where(Pledge.campaign_id == campaign.id,
                                                             Pledge.status == PledgeStatus.PENDING))).all()
    for pledge_id in pending:
        await expire(session, pledge_id, "campagne terminée sans atteindre son objectif")
    return len(voided)
