"""Tax receipts for gifts (reçu fiscal, cerfa 11580; 16216 for a company) and the yearly summary per donor.

Only for gifts — a campaign's pledges, the one-off gifts of /soutenir and, once a year, a
donor's recurring gifts of the year (one receipt for them all), in one series —
only when the organisation is of general interest. Numbers form one
continuous series per organisation and year: the counter row's lock serialises issuing,
and a trigger refuses any number that is not the next one. A refund voids the receipt;
a partial refund reissues one (new number) for what remains given.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

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
from funding.clock import local_day
from funding.db import dialect_insert, dialect_of, insert_ignore, must_get, utcnow
from funding.donations.models import RecurringGift
from funding.money import format_money
from funding.orgs.models import Organisation, Site
from funding.payments.models import Payment, PaymentStatus
from funding.security import sign

RECEIPT_TOKEN = "campaign-tax-receipt"  # noqa: S105  (a signing purpose, not a secret)
SUMMARY_TOKEN = "campaign-donor-summary"  # noqa: S105  (a signing purpose, not a secret)


def receipt_code(receipt: TaxReceipt) -> str:
    return f"{receipt.year}-{receipt.number:06d}"


async def _next_number(session: AsyncSession, org_id: int, year: int, count: int = 1) -> int:
    """Advance the year's counter by ``count``; its row stays locked until our commit, so issuing
    is serialised. Returns the last number taken (the ``count`` numbers end there)."""
    insert = dialect_insert(dialect_of(session))
    await session.execute(insert(TaxReceiptCounter).values(org_id=org_id, year=year, last_number=0)
                          .on_conflict_do_nothing(index_elements=["org_id", "year"]))
    result = await session.execute(
        update(TaxReceiptCounter).where(TaxReceiptCounter.org_id == org_id, TaxReceiptCounter.year == year)
        .values(last_number=TaxReceiptCounter.last_number + count).returning(TaxReceiptCounter.last_number)
    )
    return int(result.scalar_one())


@dataclass(frozen=True)
class Gift:
    """What a receipt is for: a campaign pledge or a one-off payment (one of the two)."""

    org_id: int
    pledge_id: int | None
    payment_id: int | None
    campaign_id: int | None
    donor_name: str
    donor_address: str
    donor_email: str
    donor_siren: str | None
    amount: int  # what remains given
    currency: str
    paid_at: dt.datetime | None
    annual_year: int | None = None  # a donor's year of recurring gifts (no pledge, no payment)

    @classmethod
    def of_pledge(cls, pledge: Pledge, campaign: Campaign) -> Gift:
        return cls(campaign.org_id, pledge.id, None, campaign.id, pledge.company_name or pledge.name, pledge.address or "",
                   pledge.email, pledge.company_siren if pledge.company_name else None,
                   pledge.amount - pledge.amount_refunded, pledge.currency, pledge.paid_at)

    @classmethod
    def of_payment(cls, payment: Payment, taken_back: int | None = None) -> Gift:
        taken = payment.amount_refunded if taken_back is None else taken_back
        return cls(payment.org_id, None, payment.id, None, payment.company_name or payment.name or "",
                   payment.donor_address or "", payment.email or "",
                   payment.company_siren if payment.company_name else None, payment.amount - taken,
                   payment.currency, payment.paid_at)


def _of(gift: Gift):
    if gift.annual_year is not None:
        return and_(TaxReceipt.org_id == gift.org_id, TaxReceipt.donor_email == gift.donor_email,
                    TaxReceipt.annual_year == gift.annual_year)
    return TaxReceipt.pledge_id == gift.pledge_id if gift.pledge_id is not None else TaxReceipt.payment_id == gift.payment_id


def _conflict(gift: Gift) -> list[str]:
    if gift.annual_year is not None:
        return ["org_id", "donor_email", "annual_year", "revision"]
    return ["pledge_id", "revision"] if gift.pledge_id is not None else ["payment_id", "revision"]


async def _issue(session: AsyncSession, gift: Gift, now: dt.datetime | None) -> TaxReceipt | None:
    """The receipt in force of a gift, issued now if it has none (once per gift and revision)."""
    if gift.amount <= 0:
        return None
    org = await must_get(session, Organisation, gift.org_id)
    if not org.general_interest:
        return None
    current = await session.scalar(select(TaxReceipt).where(_of(gift)).order_by(TaxReceipt.revision.desc()).limit(1))
    if current is not None and current.voided_at is None:
        return current
    now = now or utcnow()
    year = local_day(now).year
    number = await _next_number(session, org.id, year)
    receipt_id = await insert_ignore(session, TaxReceipt, {
        "org_id": org.id, "year": year, "number": number, "pledge_id": gift.pledge_id, "payment_id": gift.payment_id,
        "revision": (current.revision + 1) if current else 1, "campaign_id": gift.campaign_id,
        "donor_name": gift.donor_name, "donor_address": gift.donor_address, "donor_email": gift.donor_email,
        "donor_siren": gift.donor_siren, "amount": gift.amount, "currency": gift.currency,
        "paid_on": local_day(gift.paid_at or now), "method": "carte bancaire", "issued_at": now,
        "annual_year": gift.annual_year,
    }, _conflict(gift))
    if receipt_id is None:  # issued concurrently: the counter advanced for nothing, roll back with us
        raise RuntimeError(f"tax receipt of {gift.pledge_id or gift.payment_id or gift.annual_year} issued concurrently")
    return await session.get(TaxReceipt, receipt_id)


async def issue(session: AsyncSession, pledge: Pledge, *, now: dt.datetime | None = None) -> TaxReceipt | None:
    """The receipt of a paid gift (once per pledge and revision), or None when none is due."""
    if pledge.nature != Nature.GIFT or pledge.status != PledgeStatus.PAID:
        return None
    campaign = await must_get(session, Campaign, pledge.campaign_id)
    return await _issue(session, Gift.of_pledge(pledge, campaign), now)


async def issue_for_payment(session: AsyncSession, payment: Payment, *, now: dt.datetime | None = None) -> TaxReceipt | None:
    """The receipt of a paid one-off gift (/soutenir), once per payment and revision."""
    if payment.status != PaymentStatus.PAID:
        return None
    return await _issue(session, Gift.of_payment(payment), now)


async def issue_annual_many(session: AsyncSession, gifts: list[Gift], *, now: dt.datetime | None = None) -> list[TaxReceipt]:
    """First annual receipts (revision 1) of donors' years that have none (``gift.annual_year``
    set; its amount the year's total, ``paid_at`` its last instalment), in a fixed number of statements per organisation (their numbers taken at once, in a row
    of the series). A donor's year that has a receipt already fails the batch (unique constraint):
    the caller picks donors without one."""
    now = now or utcnow()
    year = local_day(now).year
    issued: list[TaxReceipt] = []
    by_org: dict[int, list[Gift]] = {}
    for gift in gifts:
        if gift.annual_year is None:
            raise ValueError("an annual receipt names its year of gifts")
        if gift.amount > 0:
            by_org.setdefault(gift.org_id, []).append(gift)
    for org_id, group in by_org.items():
        org = await must_get(session, Organisation, org_id)
        if not org.general_interest:
            continue
        last = await _next_number(session, org_id, year, len(group))
        first = last - len(group) + 1
        await session.execute(TaxReceipt.__table__.insert(), [{
            "org_id": org_id, "year": year, "number": first + i, "pledge_id": None, "payment_id": None, "revision": 1,
            "campaign_id": None, "donor_name": g.donor_name, "donor_address": g.donor_address, "donor_email": g.donor_email,
            "donor_siren": g.donor_siren, "amount": g.amount, "currency": g.currency, "paid_on": local_day(g.paid_at or now),
            "method": "carte bancaire", "issued_at": now, "annual_year": g.annual_year} for i, g in enumerate(group)])
        issued += (await session.scalars(select(TaxReceipt).where(
            TaxReceipt.org_id == org_id, TaxReceipt.year == year, TaxReceipt.number.between(first, last))
            .order_by(TaxReceipt.number))).all()
    return issued


async def _void_and_reissue(session: AsyncSession, gift: Gift, reason: str) -> TaxReceipt | None:
    current = await session.scalar(select(TaxReceipt).where(_of(gift), TaxReceipt.voided_at.is_(None)))
    if current is None:
        return None
    if current.amount == gift.amount:
        return current
    await session.execute(update(TaxReceipt).where(TaxReceipt.id == current.id, TaxReceipt.voided_at.is_(None))
                          .values(voided_at=utcnow(), void_reason=reason[:200]))
    return await _issue(session, gift, None)


async def void_and_reissue(session: AsyncSession, pledge: Pledge, reason: str) -> TaxReceipt | None:
    """After a refund: the receipt in force is voided; what remains given gets a new one."""
    campaign = await must_get(session, Campaign, pledge.campaign_id)
    return await _void_and_reissue(session, Gift.of_pledge(pledge, campaign), reason)


async def void_and_reissue_payment(session: AsyncSession, payment: Payment, taken_back: int, reason: str) -> TaxReceipt | None:
    """A one-off gift refunded or charged back (``taken_back`` in all): as for a pledge."""
    return await _void_and_reissue(session, Gift.of_payment(payment, taken_back), reason)


async def void_and_reissue_annual(session: AsyncSession, gift: Gift, reason: str) -> TaxReceipt | None:
    """A donor's year of recurring gifts after an instalment was refunded or charged back
    (``gift.amount``: what remains given that year): as for a pledge."""
    if gift.annual_year is None:
        raise ValueError("an annual receipt names its year of gifts")
    return await _void_and_reissue(session, gift, reason)


def void_reason(reason: str, amount: int, currency: str) -> str:
    """``remboursement de 50,00 €``: a legal document's French, whatever the reader's locale."""
    return f"{reason} de {format_money(amount, currency, 'fr')}"


def receipt_token(secret_key: str, receipt_id: int) -> str:
    return sign(secret_key, RECEIPT_TOKEN, receipt_id)


def summary_token(secret_key: str, org_id: int, email: str, year: int) -> str:
    return sign(secret_key, SUMMARY_TOKEN, [org_id, email, year])


# What each kind of donor's receipt states: the form, the article of the CGI, the reduction.
INDIVIDUAL_ARTICLE = "200"
COMPANY_ARTICLE = "238 bis"
WEALTH_TAX_ARTICLE = "978"


@dataclass
class ReceiptView:
    """Everything a printed receipt states: cerfa 11580 for a person, 16216 for a company."""

    receipt: TaxReceipt
    code: str
    org: Organisation
    issuer: ReceiptIssuer | None
    campaign: Campaign | None
    site: Site
    amount_words: str
    replaces: list[str] = field(default_factory=list)  # an annual receipt: the one-off receipts it annuls and replaces
    replaced_by: str | None = None  # a one-off receipt taken into an annual one: that receipt's code

    @property
    def place(self) -> str:
        return (self.issuer.place if self.issuer and self.issuer.place else self.site.town) or "Thiers"

    @property
    def for_company(self) -> bool:
        return self.receipt.donor_siren is not None

    @property
    def cerfa(self) -> str:
        return "Cerfa n° 16216*01" if self.for_company else "Cerfa n° 11580*05"

    @property
    def article(self) -> str:
        """The article of the CGI whose reduction this gift opens."""
        return COMPANY_ARTICLE if self.for_company else INDIVIDUAL_ARTICLE

    @property
    def rate(self) -> int:
        """The reduction, in per cent of the gift: 60 % for a company, 66 % for a person."""
        return 60 if self.for_company else 66

    @property
    def rate_sentence(self) -> str:
        return rate_sentence(self.for_company)

    @property
    def allocation(self) -> str:
        if self.receipt.annual_year is not None and self.replaces:
            return f"Dons réguliers et ponctuels de l'année {self.receipt.annual_year} au tiers-lieu {self.site.name}"
        if self.receipt.annual_year is not None:
            return f"Dons réguliers de l'année {self.receipt.annual_year} au tiers-lieu {self.site.name}"
        if self.campaign is not None:
            return f"Campagne « {self.campaign.title} » ({self.site.name})"
        return f"Don en ligne au tiers-lieu {self.site.name}"

    @property
    def address_lines(self) -> list[str]:
        return [line for line in self.receipt.donor_address.splitlines() if line.strip()]

    @property
    def org_address_lines(self) -> list[str]:
        return [line for line in (self.org.address or self.site.town or "").splitlines() if line.strip()]

    @property
    def purpose(self) -> str:
        return (self.issuer.purpose if self.issuer and self.issuer.purpose else
                "Association loi 1901 d'intérêt général : animation de tiers-lieux ouverts à tous "
                "(ateliers, FabLab, accueil de porteurs de projets)")

    @property
    def signatory(self) -> str:
        who = self.issuer.signatory if self.issuer and self.issuer.signatory else "Pour l'association"
        if self.issuer and self.issuer.signatory_role:
            who += f", {self.issuer.signatory_role}"
        return who

    @property
    def filename(self) -> str:
        return f"recu-fiscal-{self.code}.pdf"


def rate_sentence(for_company: bool) -> str:
    """What the donor may deduct, in the words every email and page uses (never 66 % to a company)."""
    if for_company:
        return ("L'entreprise peut déduire de son impôt 60 % du montant de ce don (article 238 bis du CGI), "
                "dans la limite de 20 000 € ou de 5 ‰ de son chiffre d'affaires hors taxes si ce montant est plus élevé.")
    return ("Vous pouvez déduire de votre impôt sur le revenu 66 % du montant de ce don (article 200 du CGI), "
            "dans la limite de 20 % de votre revenu imposable.")


async def view(session: AsyncSession, receipt_id: int) -> ReceiptView | None:
    receipt = await session.get(TaxReceipt, receipt_id)
    if receipt is None:
        return None
    campaign = await session.get(Campaign, receipt.campaign_id) if receipt.campaign_id is not None else None
    site_id: int | None
    if campaign is not None:
        site_id = campaign.site_id
    elif receipt.payment_id is not None:
        site_id = (await must_get(session, Payment, receipt.payment_id)).site_id
    else:  # a year of recurring gifts: the site of the donor's latest gift
        site_id = await session.scalar(select(RecurringGift.site_id).where(
            RecurringGift.org_id == receipt.org_id, func.lower(RecurringGift.email) == receipt.donor_email.lower())
            .order_by(RecurringGift.id.desc()).limit(1))
        if site_id is None:
            raise LookupError(f"receipt {receipt.id}: no recurring gift of {receipt.donor_email}")
    org = await must_get(session, Organisation, receipt.org_id)
    replaces: list[str] = []
    if receipt.annual_year is not None:  # the one-off receipts of its year taken in by this one or an earlier revision
        annual = aliased(TaxReceipt)
        replaces = [receipt_code(r) for r in (await session.scalars(
            select(TaxReceipt).join(annual, annual.id == TaxReceipt.replaced_by_id)
            .where(annual.org_id == receipt.org_id, annual.donor_email == receipt.donor_email,
                   annual.annual_year == receipt.annual_year, annual.revision <= receipt.revision)
            .order_by(TaxReceipt.year, TaxReceipt.number))).all()]
    replaced_by = None
    if receipt.replaced_by_id is not None:
        replaced_by = receipt_code(await must_get(session, TaxReceipt, receipt.replaced_by_id))
    return ReceiptView(receipt, receipt_code(receipt), org, await session.get(ReceiptIssuer, org.id), campaign,
                       await must_get(session, Site, site_id), amount_in_words(receipt.amount, receipt.currency),
                       replaces, replaced_by)


async def latest_of_payment(session: AsyncSession, payment_id: int) -> TaxReceipt | None:
    return await session.scalar(select(TaxReceipt).where(TaxReceipt.payment_id == payment_id)
                                .order_by(TaxReceipt.revision.desc()).limit(1))


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
