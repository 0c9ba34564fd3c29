"""Tax receipts for gifts (reçu fiscal, cerfa 11580) and the yearly summary per donor.

Only for gifts, only when the organisation is of general interest. Numbers form one
continuous series per organisation and year: the counter row's lock serialises issuing,
and a trigger refuses any number that is not the next one. A refund voids the receipt;
a partial refund reissues one (new number) for what remains given.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from funding.campaigns.models import (
    Campaign,
    Nature,
    Pledge,
    PledgeStatus,
    ReceiptIssuer,
    TaxReceipt,
    TaxReceiptCounter,
)
from funding.campaigns.words import amount_in_words
from funding.db import dialect_insert, dialect_of, insert_ignore, must_get, utcnow
from funding.orgs.models import Organisation, Site
from funding.security import sign

PARIS = ZoneInfo("Europe/Paris")
RECEIPT_TOKEN = "campaign-tax-receipt"  # noqa: S105  (a signing purpose, not a secret)
SUMMARY_TOKEN = "campaign-donor-summary"  # noqa: S105  (a signing purpose, not a secret)


def local_day(moment: dt.datetime) -> dt.date:
    return moment.replace(tzinfo=dt.UTC).astimezone(PARIS).date()


def receipt_code(receipt: TaxReceipt) -> str:
    return f"{receipt.year}-{receipt.number:06d}"


async def _next_number(session: AsyncSession, org_id: int, year: int) -> int:
    """Advance the year's counter; its row stays locked until our commit, so issuing is serialised."""
    insert = dialect_insert(dialect_of(session))
    await session.execute(insert(TaxReceiptCounter).values(org_id=org_id, year=year, last_number=0)
                          .on_conflict_do_nothing(index_elements=["org_id", "year"]))
    result = await session.execute(
        update(TaxReceiptCounter).where(TaxReceiptCounter.org_id == org_id, TaxReceiptCounter.year == year)
        .values(last_number=TaxReceiptCounter.last_number + 1).returning(TaxReceiptCounter.last_number)
    )
    return int(result.scalar_one())


async def issue(session: AsyncSession, pledge: Pledge, *, now: dt.datetime | None = None) -> TaxReceipt | None:
    """The receipt of a paid gift (once per pledge and revision), or None when none is due."""
    if pledge.nature != Nature.GIFT or pledge.status != PledgeStatus.PAID:
        return None
    amount = pledge.amount - pledge.amount_refunded
    if amount <= 0:
        return None
    campaign = await must_get(session, Campaign, pledge.campaign_id)
    org = await must_get(session, Organisation, campaign.org_id)
    if not org.general_interest:
        return None
    current = await session.scalar(select(TaxReceipt).where(TaxReceipt.pledge_id == pledge.id)
                                   .order_by(TaxReceipt.revision.desc()).limit(1))
    if current is not None and current.voided_at is None:
        return current
    now = now or utcnow()
    year = local_day(now).year
    number = await _next_number(session, org.id, year)
    receipt_id = await insert_ignore(session, TaxReceipt, {
        "org_id": org.id, "year": year, "number": number, "pledge_id": pledge.id,
        "revision": (current.revision + 1) if current else 1, "campaign_id": campaign.id,
        "donor_name": pledge.name, "donor_address": pledge.address or "", "donor_email": pledge.email,
        "amount": amount, "currency": pledge.currency, "paid_on": local_day(pledge.paid_at or now),
        "method": "carte bancaire", "issued_at": now,
    }, ["pledge_id", "revision"])
    if receipt_id is None:  # issued concurrently: the counter advanced for nothing, roll back with us
        raise RuntimeError(f"tax receipt of pledge {pledge.id} issued concurrently")
    return await session.get(TaxReceipt, receipt_id)


async def void_and_reissue(session: AsyncSession, pledge: Pledge, reason: str) -> TaxReceipt | None:
    """After a refund: the receipt in force is voided; what remains given gets a new one."""
    current = await session.scalar(select(TaxReceipt).where(TaxReceipt.pledge_id == pledge.id, TaxReceipt.voided_at.is_(None)))
    if current is None:
        return None
    if current.amount == pledge.amount - pledge.amount_refunded:
        return current
    await session.execute(update(TaxReceipt).where(TaxReceipt.id == current.id, TaxReceipt.voided_at.is_(None))
                          .values(voided_at=utcnow(), void_reason=reason[:200]))
    return await issue(session, pledge)


def receipt_token(secret_key: str, receipt_id: int) -> str:
    return sign(secret_key, RECEIPT_TOKEN, receipt_id)


def summary_token(secret_key: str, org_id: int, email: str, year: int) -> str:
    return sign(secret_key, SUMMARY_TOKEN, [org_id, email, year])


@dataclass
class ReceiptView:
    """Everything a printed receipt states (cerfa 11580 fields)."""

    receipt: TaxReceipt
    code: str
    org: Organisation
    issuer: ReceiptIssuer | None
    campaign: Campaign
    site: Site
    amount_words: str

    @property
    def place(self) -> str:
        return (self.issuer.place if self.issuer and self.issuer.place else self.site.town) or "Thiers"


async def view(session: AsyncSession, receipt_id: int) -> ReceiptView | None:
    receipt = await session.get(TaxReceipt, receipt_id)
    if receipt is None:
        return None
    campaign = await must_get(session, Campaign, receipt.campaign_id)
    org = await must_get(session, Organisation, receipt.org_id)
    return ReceiptView(receipt, receipt_code(receipt), org, await session.get(ReceiptIssuer, org.id), campaign,
                       await must_get(session, Site, campaign.site_id), amount_in_words(receipt.amount, receipt.currency))


@dataclass
class DonorYear:
    org_id: int
    email: str
    name: str
    year: int
    currency: str
    total: int
    receipts: list[TaxReceipt]


async def donor_year(session: AsyncSession, org_id: int, email: str, year: int) -> DonorYear:
    receipts = (await session.scalars(
        select(TaxReceipt).where(TaxReceipt.org_id == org_id, TaxReceipt.donor_email == email, TaxReceipt.year == year,
                                 TaxReceipt.voided_at.is_(None)).order_by(TaxReceipt.number)
    )).all()
    currency = receipts[0].currency if receipts else "EUR"
    name = receipts[-1].donor_name if receipts else ""
    return DonorYear(org_id, email, name, year, currency, sum(r.amount for r in receipts if r.currency == currency),
                     list(receipts))


async def donors_of_year(session: AsyncSession, org_id: int, year: int) -> list[tuple[str, str, int, int]]:
    """(email, name, receipts, total) per donor of the year, receipts in force only."""
    rows = (await session.execute(
        select(TaxReceipt.donor_email, func.max(TaxReceipt.donor_name), func.count(TaxReceipt.id), func.sum(TaxReceipt.amount))
        .where(TaxReceipt.org_id == org_id, TaxReceipt.year == year, TaxReceipt.voided_at.is_(None))
        .group_by(TaxReceipt.donor_email).order_by(TaxReceipt.donor_email)
    )).all()
    return [(r[0], r[1], int(r[2]), int(r[3] or 0)) for r in rows]
