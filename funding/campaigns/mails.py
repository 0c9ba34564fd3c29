"""The emails a backer receives, queued in the outbox once per event (dedupe keys), in the
backer's language (templates/mail/campaigns/; French unless the address is an English-speaking user's)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from funding.campaigns.models import Campaign, Nature, Pledge, TaxReceipt, Tier
from funding.campaigns.pledges import manage_url
from funding.campaigns.receipt_pdf import attachment
from funding.campaigns.receipts import receipt_code
from funding.clock import local_day
from funding.mail.compose import recipient_locale, render
from funding.mail.service import enqueue


async def _send(session: AsyncSession, pledge: Pledge, campaign: Campaign, key: str, name: str,
                receipt: TaxReceipt | None = None, **context: Any) -> None:
    """The email ``templates/mail/campaigns/<name>``; ``receipt``: a tax receipt to join as a PDF
    (built when the email is sent)."""
    await enqueue(session, to=pledge.email, org_id=campaign.org_id, dedupe_key=f"campaign-pledge:{pledge.id}:{key}",
                  **render(f"campaigns/{name}", await recipient_locale(session, email=pledge.email), name=pledge.name,
                           title=campaign.title, number=pledge.id, amount=pledge.amount, currency=pledge.currency,
                           link=manage_url(pledge), receipt_link=f"{manage_url(pledge)}/recu", **context),
                  attachments=[attachment(receipt.id)] if receipt is not None else None)


def _day(moment):
    """The Paris day of an instant (the templates say it long: ``5 mars 2025``, ``5 March 2025``)."""
    return local_day(moment) if moment else None


async def paid(session: AsyncSession, pledge: Pledge, campaign: Campaign, tier: Tier | None,
               receipt: TaxReceipt | None) -> None:
    await _send(session, pledge, campaign, "paid", "paid", receipt, tier=tier.title if tier is not None else None,
                paid=_day(pledge.paid_at), gift=pledge.nature == Nature.GIFT,
                code=receipt_code(receipt) if receipt is not None else None,
                company=receipt is not None and receipt.donor_siren is not None)


async def card_saved(session: AsyncSession, pledge: Pledge, campaign: Campaign, tier: Tier | None) -> None:
    await _send(session, pledge, campaign, "card-saved", "card_saved", tier=tier.title if tier is not None else None,
                goal=campaign.goal, ends=_day(campaign.ends_at))


async def authentication_needed(session: AsyncSession, pledge: Pledge, campaign: Campaign) -> None:
    await _send(session, pledge, campaign, f"auth-{pledge.charge_attempt}", "authentication_needed", until=_day(pledge.grace_until))


async def card_declined(session: AsyncSession, pledge: Pledge, campaign: Campaign) -> None:
    await _send(session, pledge, campaign, f"declined-{pledge.charge_attempt}", "card_declined", until=_day(pledge.grace_until))


async def pledge_failed(session: AsyncSession, pledge: Pledge, campaign: Campaign) -> None:
    await _send(session, pledge, campaign, "failed", "pledge_failed")


async def campaign_failed(session: AsyncSession, pledge: Pledge, campaign: Campaign) -> None:
    await _send(session, pledge, campaign, "campaign-failed", "campaign_failed", goal=campaign.goal)


async def cancelled(session: AsyncSession, pledge: Pledge, campaign: Campaign) -> None:
    await _send(session, pledge, campaign, "canceled", "canceled")


async def new_card(session: AsyncSession, pledge: Pledge, campaign: Campaign) -> None:
    await _send(session, pledge, campaign, f"card-{pledge.card_sessions}", "new_card")


async def refunded(session: AsyncSession, pledge: Pledge, campaign: Campaign, amount: int,
                   receipt: TaxReceipt | None) -> None:
    gift = pledge.nature == Nature.GIFT
    await _send(session, pledge, campaign, f"refund-{pledge.amount_refunded}", "refunded", receipt if gift else None,
                refund=amount, gift=gift, code=receipt_code(receipt) if receipt is not None else None,
                new_amount=receipt.amount if receipt is not None else None)
