"""One tax receipt per donor and year for their recurring gifts (cerfa 11580, or 16216 for a
company), issued in January for the year before, in the series of every receipt (gap-free per
organisation and year), emailed with its PDF.

Its amount is the sum of the donor's instalments paid in that year (Paris days), across their
recurring gifts to the organisation; its date the last instalment's; its donor the latest
gift's (name, address, company). A donor's one-off gifts keep the receipt each got when paid:
summing them here would receipt them twice (see the report of issue 18). An instalment refunded
or lost in a dispute counts for what remains given; after the receipt, it voids it and what
remains gets a new one.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from funding.campaigns import receipt_pdf, receipts
from funding.campaigns.models import TaxReceipt
from funding.clock import PARIS, local_day, paris_today
from funding.db import Sessions, must_get, transaction, utcnow
from funding.donations.models import RecurringGift, RecurringGiftPayment
from funding.mail.compose import recipient_locale, recipient_locales, render
from funding.mail.service import enqueue, enqueue_many
from funding.orgs.models import Organisation

BATCH = 500  # donors per transaction


def year_bounds(year: int) -> tuple[dt.datetime, dt.datetime]:
    """[1 January, 1 January next) of ``year`` in Paris, as naive UTC (how times are stored)."""
    def utc(day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(), PARIS).astimezone(dt.UTC).replace(tzinfo=None)

    return utc(dt.date(year, 1, 1)), utc(dt.date(year + 1, 1, 1))


@dataclass
class DonorYear:
    org_id: int
    email: str
    total: int
    currency: str
    last_paid_at: dt.datetime
    gift: RecurringGift  # the latest: whose name, address and company the receipt states


async def donors_of_year(session: AsyncSession, year: int, *, limit: int | None = None,
                         donor: tuple[int, str] | None = None) -> list[DonorYear]:
    """Donors of organisations of general interest with instalments paid in ``year`` and no
    annual receipt in force for it yet (``donor``: this (organisation, address) only, receipt
    or not), with what remains given once refunds and lost disputes are taken off.

    The donors that have their receipt are read apart and left out here, not by a correlated
    NOT EXISTS: while January's job fills the receipts, the planner's statistics lag behind
    and it chose a nested loop over every receipt for each donor (quadratic; the bench saw it)."""
    start, end = year_bounds(year)
    email = func.lower(RecurringGift.email)
    query = (select(RecurringGift.org_id, email, RecurringGiftPayment.currency,
                    func.sum(RecurringGiftPayment.amount - RecurringGiftPayment.amount_refunded),
                    func.max(RecurringGiftPayment.paid_at), func.max(RecurringGift.id))
             .join(RecurringGift, RecurringGift.id == RecurringGiftPayment.gift_id)
             .join(Organisation, Organisation.id == RecurringGift.org_id)
             .where(RecurringGiftPayment.paid_at >= start, RecurringGiftPayment.paid_at < end, Organisation.general_interest)
             .group_by(RecurringGift.org_id, email, RecurringGiftPayment.currency)
             .order_by(RecurringGift.org_id, email))
    done: set[tuple[int, str]] = set()
    if donor is not None:
        query = query.where(RecurringGift.org_id == donor[0], email == donor[1].lower())
    else:
        done = {(org_id, address) for org_id, address in (await session.execute(
            select(TaxReceipt.org_id, TaxReceipt.donor_email).where(TaxReceipt.annual_year == year,
                                                                   TaxReceipt.voided_at.is_(None)))).all()}
    rows = [r for r in (await session.execute(query)).all() if (r[0], r[1]) not in done][:limit]
    gifts = {g.id: g for g in (await session.scalars(select(RecurringGift).where(RecurringGift.id.in_([r[5] for r in rows])))).all()}
    return [DonorYear(r[0], r[1], int(r[3]), r[2], r[4], gifts[r[5]]) for r in rows]


def receipt_gift(donor: DonorYear, year: int) -> receipts.Gift:
    gift = donor.gift
    company = gift.company_name or None
    return receipts.Gift(org_id=donor.org_id, pledge_id=None, payment_id=None, campaign_id=None,
                         donor_name=company or gift.name, donor_address=gift.donor_address or "", donor_email=donor.email,
                         donor_siren=gift.company_siren if company else None, amount=donor.total, currency=donor.currency,
                         paid_at=donor.last_paid_at, annual_year=year)


async def issue_year(session: AsyncSession, year: int, *, now: dt.datetime | None = None,
                     limit: int | None = BATCH) -> list[TaxReceipt]:
    """Issue (and email) the annual receipts still due for ``year``, at most ``limit`` donors."""
    donors = await donors_of_year(session, year, limit=limit)
    issued = await receipts.issue_annual_many(session, [receipt_gift(donor, year) for donor in donors], now=now)
    names = {(d.org_id, d.email): d.gift.name for d in donors}
    locales = await recipient_locales(session, [receipt.donor_email for receipt in issued])
    await enqueue_many(session, [{
        "to": receipt.donor_email, "org_id": receipt.org_id, "dedupe_key": f"annual-receipt:{receipt.id}",
        **render("donations/annual_receipt", locales.get(receipt.donor_email.lower(), "fr"), name=names[(receipt.org_id, receipt.donor_email)],
                 year=year, amount=receipt.amount, currency=receipt.currency, code=receipts.receipt_code(receipt),
                 company=receipt.donor_siren is not None),
        "attachments": [receipt_pdf.attachment(receipt.id)]} for receipt in issued])
    return issued


async def taken_back(session: AsyncSession, payment_intent_id: str, total: int, *, reason: str) -> TaxReceipt | None:
    """Stripe's total taken back of an instalment (refunds, a lost dispute; it only grows): kept
    on the instalment; if its year's annual receipt is issued, it is voided and what remains given
    that year gets a new one (the donor is told, with it). Once per total."""
    instalment = await session.scalar(select(RecurringGiftPayment).where(RecurringGiftPayment.payment_intent_id == payment_intent_id))
    if instalment is None or total <= instalment.amount_refunded:
        return None
    total = min(total, instalment.amount)
    await session.execute(update(RecurringGiftPayment).where(RecurringGiftPayment.id == instalment.id,
                                                             RecurringGiftPayment.amount_refunded < total)
                          .values(amount_refunded=total))
    gift = await must_get(session, RecurringGift, instalment.gift_id)
    year = local_day(instalment.paid_at).year
    email = gift.email.lower()
    current = await session.scalar(select(TaxReceipt).where(TaxReceipt.org_id == gift.org_id, TaxReceipt.donor_email == email,
                                                            TaxReceipt.annual_year == year, TaxReceipt.voided_at.is_(None)))
    if current is None:  # not issued yet: January's sum takes it off
        return None
    found = await donors_of_year(session, year, donor=(gift.org_id, email))
    donor = found[0] if found else None
    remaining = donor.total if donor is not None else 0
    delta = current.amount - remaining
    if delta <= 0:
        return current
    why = receipts.void_reason(reason, delta, current.currency)
    if donor is not None and remaining > 0:
        replaced = await receipts.void_and_reissue_annual(session, receipt_gift(donor, year), why)
    else:
        await session.execute(update(TaxReceipt).where(TaxReceipt.id == current.id, TaxReceipt.voided_at.is_(None))
                              .values(voided_at=utcnow(), void_reason=why[:200]))
        replaced = None
    await enqueue(session, to=email, org_id=gift.org_id, dedupe_key=f"annual-receipt:{current.id}:voided",
                  **render("donations/annual_voided", await recipient_locale(session, email=email), name=gift.name, year=year,
                           amount=delta, currency=current.currency, reason=reason, code=receipts.receipt_code(current),
                           new_code=receipts.receipt_code(replaced) if replaced is not None else None,
                           new_amount=replaced.amount if replaced is not None else None),
                  attachments=[receipt_pdf.attachment(replaced.id)] if replaced is not None else None)
    return replaced


QUIET_SECONDS = 3600.0  # once a round finds nothing due, the job looks again an hour later (the worker polls every few seconds)
QUIET = {"until": 0.0}  # this process: when the job may look again


async def january(sessions: Sessions, settings, gateway) -> int:
    """The worker's job: in January, the receipts of last year's recurring gifts still due (by batches)."""
    today = paris_today()
    if today.month != 1 or time.monotonic() < QUIET["until"]:
        return 0
    async with transaction(sessions) as session:
        issued = len(await issue_year(session, today.year - 1, now=utcnow()))
    if issued == 0:
        QUIET["until"] = time.monotonic() + QUIET_SECONDS
    return issued
