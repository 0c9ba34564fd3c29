"""The backer's space (``/mes-contributions``): every contribution, pledge and gift of the person
logged in, with its state, its receipt and what can still be done (cancel a promise, save another
card), so that a lost email is no longer a lost receipt.

A backer needs no account to give. Asking for a login link (``/login``) with the address they
gave with makes one, with no role: :func:`known_backer` tells the login which addresses gave.
The page reads the rows of that address only, through the organisations' wall (a backer
belongs to none: their own rows are found by their address, which the login proved).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from funding.auth.service import ACCOUNT_SOURCES
from funding.campaigns.models import Campaign, CampaignStatus, Mode, Pledge, PledgeStatus, TaxReceipt
from funding.campaigns.pledges import pledge_token
from funding.campaigns.receipts import receipt_code, receipt_token
from funding.donations.models import LIVE_GIFT_STATUSES, RecurringGift
from funding.donations.recurring import gifts_of
from funding.donations.service import donor_token
from funding.payments.cards import CardOnFile, MandateOnFile, payment_method_card, subscription_mandate
from funding.settings import Settings

LANDING = "/mes-contributions"
MOST = 200
# A promise whose card can still change or be cancelled (the pledge page does it).
OPEN_PROMISES = (PledgeStatus.ACTIVE, PledgeStatus.CARD_DECLINED, PledgeStatus.ACTION_REQUIRED, PledgeStatus.RETRY)


async def known_backer(session: AsyncSession, email: str) -> tuple[str, str] | None:
    """(name, landing page) of an address that contributed or received a receipt; else None."""
    name = await session.scalar(select(Pledge.name).where(func.lower(Pledge.email) == email)
                                .order_by(Pledge.id.desc()).limit(1))
    if name is None:
        name = await session.scalar(select(RecurringGift.name).where(func.lower(RecurringGift.email) == email)
                                    .order_by(RecurringGift.id.desc()).limit(1))
    if name is None:
        name = await session.scalar(select(TaxReceipt.donor_name).where(func.lower(TaxReceipt.donor_email) == email)
                                    .order_by(TaxReceipt.id.desc()).limit(1))
    return (name, LANDING) if name else None


ACCOUNT_SOURCES.append(known_backer)


@dataclass
class BackerPledge:
    pledge: Pledge
    campaign: Campaign
    link: str
    receipt_link: str | None
    can_change: bool


@dataclass
class BackerReceipt:
    receipt: TaxReceipt
    code: str
    link: str


@dataclass
class BackerSpace:
    pledges: list[BackerPledge]
    receipts: list[BackerReceipt]
    gifts: list[RecurringGift] = field(default_factory=list)  # recurring gifts, stopped ones included


async def space(session: AsyncSession, settings: Settings, email: str, now: dt.datetime) -> BackerSpace:
    """What ``email`` gave, newest first, with fresh signed links to each."""
    email = email.strip().lower()
    rows = (await session.execute(
        select(Pledge, Campaign).join(Campaign, Campaign.id == Pledge.campaign_id)
        .where(func.lower(Pledge.email) == email).order_by(Pledge.id.desc()).limit(MOST))).all()
    receipts = (await session.scalars(
        select(TaxReceipt).where(func.lower(TaxReceipt.donor_email) == email).order_by(TaxReceipt.id.desc())
        .limit(MOST))).all()
    with_receipt = {r.pledge_id for r in receipts if r.pledge_id is not None and r.voided_at is None}
    pledges = []
    for pledge, campaign in rows:
        token = pledge_token(settings.secret_key, pledge.id)
        live = campaign.status == CampaignStatus.LIVE and now < campaign.ends_at
        pledges.append(BackerPledge(
            pledge, campaign, f"/contributions/{token}",
            f"/contributions/{token}/recu" if pledge.id in with_receipt else None,
            campaign.mode == Mode.ALL_OR_NOTHING and pledge.status in OPEN_PROMISES and (live or pledge.status != PledgeStatus.ACTIVE)))
    kept = []
    for receipt in receipts:
        path = (f"/recus/{receipt_token(settings.secret_key, receipt.id)}" if receipt.pledge_id is not None
                else f"/soutenir/recu/{donor_token(settings.secret_key, receipt.payment_id or 0)}")
        kept.append(BackerReceipt(receipt, receipt_code(receipt), path))
    return BackerSpace(pledges, kept, await gifts_of(session, email))


CARDS_SHOWN = 10  # Stripe reads per page: the open promises, newest first


async def cards_on_file(gw, view: BackerSpace) -> dict[int, CardOnFile]:
    """The card saved for each promise still to be charged (or to be retried), from Stripe."""
    wanted = [b.pledge for b in view.pledges if b.pledge.status in OPEN_PROMISES and b.pledge.payment_method_id][:CARDS_SHOWN]
    found = await asyncio.gather(*(payment_method_card(gw, p.payment_method_id) for p in wanted))
    return {p.id: card for p, card in zip(wanted, found, strict=True) if card is not None}


async def mandates_on_file(gw, view: BackerSpace) -> dict[int, MandateOnFile]:
    """The SEPA mandate of each recurring gift still running that is debited from a bank account, from Stripe
    (a gift paid by card has none)."""
    wanted = [g for g in view.gifts if g.status in LIVE_GIFT_STATUSES and g.stripe_customer_id][:CARDS_SHOWN]
    found = await asyncio.gather(*(subscription_mandate(gw, g.stripe_customer_id, g.stripe_subscription_id) for g in wanted))
    return {g.id: mandate for g, mandate in zip(wanted, found, strict=True) if mandate is not None}
