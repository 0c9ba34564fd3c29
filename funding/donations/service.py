"""Gifts to a site, outside any campaign: the simplest money the crowd gives.

Books: [ST] D 5115 net · D 627 fee · C 75411 Dons manuels, funding source crowdfunding,
tagged with the site chosen by the donor. Every gift gets its tax receipt (in the series of
the campaigns' gifts), emailed as a PDF; a refund or a lost chargeback voids it. A donor who
also gives by recurring gift gets, in January, one annual receipt that takes in the year's
one-off receipts (funding/donations/annual.py); a gift of a year whose annual receipt is
issued (paid late) is added to it instead of getting its own.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from funding.campaigns import receipt_pdf, receipts
from funding.campaigns.models import TaxReceipt
from funding.clock import local_day
from funding.db import digits
from funding.donations import annual
from funding.donations import recurring as recurring  # registers the recurring gifts' purpose
from funding.ledger.models import FundingSource
from funding.ledger.service import Line
from funding.mail.compose import recipient_locale, recipient_locales, render
from funding.mail.service import enqueue, enqueue_many
from funding.orgs.models import Site
from funding.payments import purposes
from funding.payments.models import Payment
from funding.payments.service import on_paid
from funding.security import sign

PURPOSE = "donation"
MIN_AMOUNT = 100  # 1,00 €
MAX_AMOUNT = 1_000_000  # 10 000,00 €: above that, a person talks to us first
PRESETS = (1000, 2000, 5000, 10000)
DONOR_TOKEN = "donation-donor"  # noqa: S105  (a signing purpose, not a secret)


def donor_token(secret_key: str, payment_id: int) -> str:
    """The donor's signed link to their gift's receipt (every revision of it: the latest is shown)."""
    return sign(secret_key, DONOR_TOKEN, payment_id)


async def _site(session: AsyncSession, site_id) -> Site | None:
    """Sites, kept for the session's life: a batch of donations asks for the same few."""
    cache = session.info.setdefault("donation_sites", {})
    if site_id not in cache:
        cache[site_id] = await session.get(Site, int(site_id))
    return cache[site_id]


async def allocate(session: AsyncSession, metadata: dict, amount: int, currency: str) -> purposes.Allocation | None:
    site_id = metadata.get("site_id")
    site = await _site(session, site_id) if digits(str(site_id or "")) else None
    if site is None:
        return None
    return purposes.Allocation(
        org_id=site.org_id, site_id=site.id, funding_source=FundingSource.CROWDFUNDING,
        label=f"Don en ligne n° {metadata.get('payment_id', '?')} — {site.name}"[:200],
        lines=[Line("75411", -amount, currency)],
    )


async def _thanks(session: AsyncSession, payment: Payment, receipt: TaxReceipt | None, locale: str) -> dict:
    """The thanks for a paid gift (with its receipt, if any), in ``locale``: what ``enqueue`` takes."""
    site = await _site(session, payment.site_id)
    if site is None:  # payments.site_id is a foreign key
        raise LookupError(f"Site {payment.site_id!r} does not exist")
    return {
        "to": payment.email,
        "org_id": payment.org_id,
        "dedupe_key": f"payment:{payment.id}:receipt",
        **render("donations/thanks", locale, name=payment.name or "", amount=payment.amount, currency=payment.currency,
                 site=site.name, number=payment.id, code=receipts.receipt_code(receipt) if receipt is not None else None,
                 company=receipt is not None and receipt.donor_siren is not None, link=payment.donor_link),
        "attachments": [receipt_pdf.attachment(receipt.id)] if receipt is not None else None,
    }


def _year_of(payment: Payment) -> tuple[int, str, int] | None:
    return (payment.org_id, payment.email.strip().lower(), local_day(payment.paid_at).year) if payment.email and payment.paid_at else None


async def _receipt(session: AsyncSession, payment: Payment, annual_issued: set[tuple[int, str, int]]) -> TaxReceipt | None:
    """The gift's own receipt; or, when its year's annual receipt is issued already (a gift paid
    late), none: the annual receipt takes it in (voided and reissued, the donor told)."""
    key = _year_of(payment)
    if key is not None and key in annual_issued:
        await annual.refresh(session, key[0], key[1], key[2], reason=annual.ADDED)
        return None
    return await receipts.issue_for_payment(session, payment)


async def thank(session: AsyncSession, payment: Payment) -> None:
    """A gift is paid (once: the payment's transition runs this): its tax receipt, then the thanks
    (in the donor's language: French unless the address is an English-speaking user's)."""
    receipt = await _receipt(session, payment, await annual.issued_for(session, [(payment.org_id, payment.email or "", payment.paid_at)]))
    if payment.email:
        await enqueue(session, **await _thanks(session, payment, receipt, await recipient_locale(session, email=payment.email)))


async def thank_many(session: AsyncSession, payments: list[Payment]) -> None:
    annual_issued = await annual.issued_for(session, [(p.org_id, p.email or "", p.paid_at) for p in payments])
    issued = [(payment, await _receipt(session, payment, annual_issued)) for payment in payments]
    locales = await recipient_locales(session, [payment.email for payment in payments if payment.email])
    await enqueue_many(session, [await _thanks(session, payment, receipt, locales.get(payment.email.strip().lower(), "fr"))
                                 for payment, receipt in issued if payment.email])


async def apply_taken_back(session: AsyncSession, payment_id: int, taken_back: int, *, reason: str = "remboursement") -> TaxReceipt | None:
    """Stripe's total taken back from a gift (refunds, and a lost dispute's amount; it only
    grows): the receipt in force is voided, what remains given gets a new one, and the donor
    is told, in euros. Once per total (the email's key), whichever event brings it."""
    payment = await session.get(Payment, payment_id)
    if payment is None or payment.purpose != PURPOSE or taken_back <= 0:
        return None
    if taken_back > payment.taken_back:  # kept for the annual receipt's sum (a lost dispute is not a refund)
        await session.execute(update(Payment).where(Payment.id == payment.id, Payment.taken_back < taken_back)
                              .values(taken_back=min(taken_back, payment.amount)))
        set_committed_value(payment, "taken_back", min(taken_back, payment.amount))
    key = _year_of(payment)
    if key is not None and await annual.in_force(session, *key) is not None:  # the annual receipt states this gift
        return await annual.refresh(session, *key, reason=reason)
    current = await session.scalar(select(TaxReceipt).where(TaxReceipt.payment_id == payment.id, TaxReceipt.voided_at.is_(None)))
    if current is None:
        return None
    remaining = max(payment.amount - taken_back, 0)
    delta = current.amount - remaining
    if delta <= 0:
        return current
    replaced = await receipts.void_and_reissue_payment(session, payment, taken_back,
                                                       receipts.void_reason(reason, delta, payment.currency))
    if payment.email:
        await enqueue(session, to=payment.email, org_id=payment.org_id, dedupe_key=f"payment:{payment.id}:taken-back-{taken_back}",
                      **render("donations/taken_back", await recipient_locale(session, email=payment.email),
                               name=payment.name or "", number=payment.id, amount=delta, currency=payment.currency,
                               dispute=reason != "remboursement", code=receipts.receipt_code(current),
                               new_code=receipts.receipt_code(replaced) if replaced is not None else None,
                               new_amount=replaced.amount if replaced is not None else None, link=payment.donor_link),
                      attachments=[receipt_pdf.attachment(replaced.id)] if replaced is not None else None)
    return replaced


purposes.register(PURPOSE, allocate)
on_paid(PURPOSE, thank, many=thank_many)
