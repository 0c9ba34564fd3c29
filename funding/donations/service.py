"""Gifts to a site, outside any campaign: the simplest money the crowd gives.

Books: [ST] D 5115 net · D 627 fee · C 75411 Dons manuels, funding source crowdfunding,
tagged with the site chosen by the donor.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from funding.db import digits
from funding.i18n import money
from funding.ledger.models import FundingSource
from funding.ledger.service import Line
from funding.mail.service import enqueue, enqueue_many
from funding.orgs.models import Site
from funding.payments import purposes
from funding.payments.models import Payment
from funding.payments.service import on_paid

PURPOSE = "donation"
MIN_AMOUNT = 100  # 1,00 €
MAX_AMOUNT = 1_000_000  # 10 000,00 €: above that, a person talks to us first
PRESETS = (1000, 2000, 5000, 10000)


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


async def _thanks(session: AsyncSession, payment: Payment) -> dict:
    site = await _site(session, payment.site_id)
    if site is None:  # payments.site_id is a foreign key
        raise LookupError(f"Site {payment.site_id!r} does not exist")
    return {
        "to": payment.email,
        "org_id": payment.org_id,
        "dedupe_key": f"payment:{payment.id}:receipt",
        "subject": "Merci pour votre don à Entre-Lab",
        "body_text": (
            f"Bonjour {payment.name or ''},\n\n"
            f"Nous avons bien reçu votre don de {money(payment.amount, payment.currency)} pour {site.name}.\n"
            f"Référence : don n° {payment.id}.\n\n"
            "Merci de faire vivre les tiers-lieux du bassin thiernois.\n\nL'équipe Entre-Lab"
        ),
    }


async def thank(session: AsyncSession, payment: Payment) -> None:
    if payment.email:
        await enqueue(session, **await _thanks(session, payment))


async def thank_many(session: AsyncSession, payments: list[Payment]) -> None:
    await enqueue_many(session, [await _thanks(session, p) for p in payments if p.email])


purposes.register(PURPOSE, allocate)
on_paid(PURPOSE, thank, many=thank_many)
