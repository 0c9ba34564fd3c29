"""One tax receipt per donor and year for their recurring gifts (cerfa 11580, or 16216 for a
company), issued in January for the year before, in the series of every receipt (gap-free per
organisation and year), emailed with its PDF.

Its amount is the sum of the donor's instalments paid in that year (Paris days), across their
recurring gifts to the organisation; its date the last instalment's; its donor the latest
gift's (name, address, company). A donor's one-off gifts keep the receipt each got when paid:
summing them here would receipt them twice (see the report of issue 18).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from funding.campaigns import receipt_pdf, receipts
from funding.campaigns.models import TaxReceipt
from funding.clock import PARIS, paris_today
from funding.db import Sessions, transaction, utcnow
from funding.donations.models import RecurringGift, RecurringGiftPayment
from funding.i18n import money
from funding.mail.service import enqueue
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


async def donors_of_year(session: AsyncSession, year: int, *, limit: int | None = None) -> list[DonorYear]:
    """Donors of organisations of general interest with instalments paid in ``year`` and no
    annual receipt in force for it yet."""
    start, end = year_bounds(year)
    email = func.lower(RecurringGift.email)
    done = (select(TaxReceipt.id).where(TaxReceipt.org_id == RecurringGift.org_id, TaxReceipt.donor_email == email,
                                        TaxReceipt.annual_year == year, TaxReceipt.voided_at.is_(None)).exists())
    query = (select(RecurringGift.org_id, email, RecurringGiftPayment.currency, func.sum(RecurringGiftPayment.amount),
                    func.max(RecurringGiftPayment.paid_at), func.max(RecurringGift.id))
             .join(RecurringGift, RecurringGift.id == RecurringGiftPayment.gift_id)
             .join(Organisation, Organisation.id == RecurringGift.org_id)
             .where(RecurringGiftPayment.paid_at >= start, RecurringGiftPayment.paid_at < end, Organisation.general_interest, ~done)
             .group_by(RecurringGift.org_id, email, RecurringGiftPayment.currency)
             .order_by(RecurringGift.org_id, email))
    if limit is not None:
        query = query.limit(limit)
    rows = (await session.execute(query)).all()
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
    issued = []
    for donor in await donors_of_year(session, year, limit=limit):
        receipt = await receipts.issue_annual(session, receipt_gift(donor, year), now=now)
        if receipt is None:
            continue
        issued.append(receipt)
        code = receipts.receipt_code(receipt)
        await enqueue(session, to=donor.email, org_id=donor.org_id, dedupe_key=f"annual-receipt:{receipt.id}",
                      subject=f"Votre reçu fiscal {year} pour vos dons réguliers à Entre-Lab",
                      body_text=(f"Bonjour {donor.gift.name},\n\nEn {year}, vos dons réguliers ont atteint "
                                 f"{money(donor.total, donor.currency)}. Votre reçu fiscal n° {code} est joint à ce message "
                                 f"(PDF), pour votre déclaration de revenus.\n"
                                 f"{receipts.rate_sentence(receipt.donor_siren is not None)}\n\n"
                                 "Merci de faire vivre les tiers-lieux du bassin thiernois.\n\nL'équipe Entre-Lab"),
                      attachments=[receipt_pdf.attachment(receipt.id)])
    return issued


async def january(sessions: Sessions, settings, gateway) -> int:
    """The worker's job: in January, the receipts of last year's recurring gifts still due (by batches)."""
    today = paris_today()
    if today.month != 1:
        return 0
    async with transaction(sessions) as session:
        return len(await issue_year(session, today.year - 1, now=utcnow()))
