"""Gifts to a site, outside any campaign: the simplest money the crowd gives.

Books: [ST] D 5115 net · D 627 fee · C 75411 Dons manuels, funding source crowdfunding,
tagged with the site chosen by the donor. Every gift gets its tax receipt (in the series of
the campaigns' gifts), emailed as a PDF; a refund or a lost chargeback voids it.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from funding.campaigns import receipt_pdf, receipts
from funding.campaigns.models import TaxReceipt
from funding.db import digits
from funding.donations import recurring as recurring  # registers the recurring gifts' purpose
from funding.i18n import money
from funding.ledger.models import FundingSource
from funding.ledger.service import Line
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


async def _thanks(session: AsyncSession, payment: Payment, receipt: TaxReceipt | None) -> dict:
    site = await _site(session, payment.site_id)
    if site is None:  # payments.site_id is a foreign key
        raise LookupError(f"Site {payment.site_id!r} does not exist")
    body = (f"Bonjour {payment.name or ''},\n\n"
            f"Nous avons bien reçu votre don de {money(payment.amount, payment.currency)} pour {site.name}.\n"
            f"Référence : don n° {payment.id}.\n\n")
    if receipt is not None:
        body += (f"Votre reçu fiscal n° {receipts.receipt_code(receipt)} est joint à ce message (PDF). "
                 f"{receipts.rate_sentence(receipt.donor_siren is not None)}\n")
        if payment.donor_link:
            body += f"Vous pouvez le télécharger à nouveau ici : {payment.donor_link}\n"
        body += "\n"
    body += "Merci de faire vivre les tiers-lieux du bassin thiernois.\n\nL'équipe Entre-Lab"
    return {
        "to": payment.email,
        "org_id": payment.org_id,
        "dedupe_key": f"payment:{payment.id}:receipt",
        "subject": "Merci pour votre don à Entre-Lab" + (" — votre reçu fiscal" if receipt is not None else ""),
        "body_text": body,
        "attachments": [receipt_pdf.attachment(receipt.id)] if receipt is not None else None,
    }


async def thank(session: AsyncSession, payment: Payment) -> None:
    """A gift is paid (once: the payment's transition runs this): its tax receipt, then the thanks."""
    receipt = await receipts.issue_for_payment(session, payment)
    if payment.email:
        await enqueue(session, **await _thanks(session, payment, receipt))


async def thank_many(session: AsyncSession, payments: list[Payment]) -> None:
    emails = []
    for payment in payments:
        receipt = await receipts.issue_for_payment(session, payment)
        if payment.email:
            emails.append(await _thanks(session, payment, receipt))
    await enqueue_many(session, emails)


async def apply_taken_back(session: AsyncSession, payment_id: int, taken_back: int, *, reason: str = "remboursement") -> TaxReceipt | None:
    """Stripe's total taken back from a gift (refunds, and a lost dispute's amount; it only
    grows): the receipt in force is voided, what remains given gets a new one, and the donor
    is told, in euros. Once per total (the email's key), whichever event brings it."""
    payment = await session.get(Payment, payment_id)
    if payment is None or payment.purpose != PURPOSE or taken_back <= 0:
        return None
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
        what = (f"Nous vous avons remboursé {money(delta, payment.currency)} sur votre don n° {payment.id}."
                if reason == "remboursement" else
                f"À la suite de la contestation du paiement auprès de votre banque, {money(delta, payment.currency)} "
                f"de votre don n° {payment.id} vous ont été rendus.")
        body = f"Bonjour {payment.name or ''},\n\n{what}\n\n"
        if replaced is not None:
            body += (f"Votre reçu fiscal n° {receipts.receipt_code(current)} est annulé ; le reçu n° "
                     f"{receipts.receipt_code(replaced)} le remplace pour {money(replaced.amount, replaced.currency)} (joint).\n")
        else:
            body += f"Votre reçu fiscal n° {receipts.receipt_code(current)} est annulé.\n"
        if payment.donor_link:
            body += f"Votre don en ligne : {payment.donor_link}\n"
        body += "\nL'équipe Entre-Lab"
        await enqueue(session, to=payment.email, org_id=payment.org_id, dedupe_key=f"payment:{payment.id}:taken-back-{taken_back}",
                      subject=f"Votre don n° {payment.id} : reçu fiscal annulé", body_text=body,
                      attachments=[receipt_pdf.attachment(replaced.id)] if replaced is not None else None)
    return replaced


purposes.register(PURPOSE, allocate)
on_paid(PURPOSE, thank, many=thank_many)
