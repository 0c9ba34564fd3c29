"""Pledges: checking a contribution, reserving stock, and every state transition.

A transition is one conditional UPDATE (``… WHERE status IN (…)``): it happens once,
whichever path (webhook, return page, deadline job, a second worker) gets there first.
When it changes whether a pledge counts, the campaign's totals and the tier's counters
move in the same statement batch of the same transaction. Locks are always taken in the
same order — campaign, then pledge, then tier — so concurrent transitions never deadlock.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from funding.auth.service import AuthError, normalise_email
from funding.campaigns.donors import DonorDetails, DonorError, check_donor
from funding.campaigns.models import (
    COUNTED,
    Campaign,
    CampaignStatus,
    Match,
    MatchStatus,
    Nature,
    Pledge,
    PledgeStatus,
    Tier,
    TierKind,
)
from funding.db import digits, must_get, rowcount, utcnow
from funding.errors import FundingError
from funding.i18n import gettext as _
from funding.i18n import money
from funding.money import MoneyError, check_currency, parse_amount
from funding.orgs.models import Organisation
from funding.security import sign

GIFT_TOLERANCE_PERCENT = 25  # a counterpart is tolerated up to 25 % of the gift…
GIFT_TOLERANCE_CAP = 7300  # …and 73 € (ACCOUNTING.md §2); above that the contribution is a sale
GRACE = dt.timedelta(days=7)
TOKEN_PURPOSE = "campaign-pledge"  # noqa: S105  (a signing purpose, not a secret)
RELEASES_STOCK = (PledgeStatus.EXPIRED, PledgeStatus.CANCELED, PledgeStatus.FAILED)
ENDED = (PledgeStatus.FAILED, PledgeStatus.CANCELED, PledgeStatus.EXPIRED, PledgeStatus.VOID)


class ContributionError(FundingError):
    """A refused contribution; the message is for the backer."""


@dataclass
class Contribution:
    """What a backer typed, as typed."""

    amount: str = ""
    tier: str = ""
    currency: str = ""
    name: str = ""
    email: str = ""
    address: str = ""  # as one text (the API, the demo); the forms give ``donor``
    donor: DonorDetails = field(default_factory=DonorDetails)
    show_name: bool = False
    public_name: str = ""
    message: str = ""
    wants_updates: bool = False  # "send me the campaign's news"


def is_sale(amount: int, tier: Tier | None) -> bool:
    """A reward worth more than the tolerated counterpart makes the whole contribution a sale."""
    if tier is None or tier.kind != TierKind.REWARD:
        return False
    tolerance = min(amount * GIFT_TOLERANCE_PERCENT // 100, GIFT_TOLERANCE_CAP)
    return tier.reward_value > tolerance


def match_share(amount: int, match: Match | None) -> int:
    """What the public funder adds for this contribution (before the total cap)."""
    if match is None or match.status != MatchStatus.PLEDGED:
        return 0
    return min(amount * match.ratio_num // match.ratio_den, match.cap_per_pledge)


def match_total(campaign: Campaign, match: Match | None) -> int:
    if match is None or match.status == MatchStatus.CANCELED:
        return 0
    if match.status == MatchStatus.RELEASED:
        return match.released_amount or 0
    return min(campaign.match_uncapped, match.total_cap)


def pledge_token(secret_key: str, pledge_id: int) -> str:
    return sign(secret_key, TOKEN_PURPOSE, pledge_id)


def manage_url(pledge: Pledge) -> str:
    return f"{pledge.link_base}/contributions/{pledge.access_token}"


def check_open(campaign: Campaign | None, now: dt.datetime) -> Campaign:
    if campaign is None or campaign.status == CampaignStatus.DRAFT:
        raise ContributionError(_("Cette campagne n'existe pas ou n'est pas encore publiée."))
    if campaign.status != CampaignStatus.LIVE or now >= campaign.ends_at:
        raise ContributionError(_("Cette campagne est terminée : elle ne reçoit plus de contributions."))
    if now < campaign.starts_at:
        raise ContributionError(_("La collecte n'a pas encore commencé."))
    return campaign


async def create_pledge(
    session: AsyncSession,
    campaign_id: int,
    data: Contribution,
    *,
    secret_key: str,
    link_base: str,
    now: dt.datetime | None = None,
) -> Pledge:
    """Check a contribution and record it as ``pending``, its tier's unit reserved.

    Raises ContributionError and writes nothing when the input is wrong, the campaign is
    not open, the tier is unknown or sold out. Stock is taken by a conditional UPDATE
    (``remaining > 0``): concurrent backers can never take more units than there are.
    """
    now = now or utcnow()
    campaign = check_open(await session.get(Campaign, campaign_id, populate_existing=True), now)
    try:
        currency = check_currency(data.currency or campaign.currency)
    except MoneyError:
        raise ContributionError(_("Devise inconnue.")) from None
    if currency != campaign.currency:
        raise ContributionError(_("Cette campagne collecte en %(currency)s uniquement.", currency=campaign.currency))

    tier = None
    if (data.tier or "").strip():
        raw = data.tier.strip()
        tier = await session.get(Tier, int(raw)) if digits(raw) and len(raw) < 18 else None
        if tier is None or tier.campaign_id != campaign.id or not tier.active:
            raise ContributionError(_("Cette contrepartie n'existe pas pour cette campagne."))
    elif not campaign.free_amount:
        raise ContributionError(_("Choisissez une contrepartie."))

    raw_amount = (data.amount or "").strip()
    if not raw_amount and tier is not None:
        amount = tier.amount
    else:
        try:
            amount = parse_amount(raw_amount, currency)
        except MoneyError as exc:
            raise ContributionError(_("Montant invalide : %(value)s", value=raw_amount or _("(vide)"))) from exc
    minimum = max(campaign.min_amount, tier.amount if tier else 0)
    if amount < minimum:
        if tier is not None and tier.amount > campaign.min_amount:
            raise ContributionError(_("Cette contrepartie demande au moins %(min)s.", min=money(minimum, currency)))
        raise ContributionError(_("La contribution minimale est de %(min)s.", min=money(minimum, currency)))
    if amount > campaign.max_amount:
        raise ContributionError(_("Au-delà de %(max)s, écrivez-nous : nous préparerons votre contribution avec vous.",
                                  max=money(campaign.max_amount, currency)))

    name = " ".join((data.name or "").split())[:200]
    if not name:
        raise ContributionError(_("Indiquez votre nom (il figure sur votre reçu)."))
    try:
        email = normalise_email(data.email)
    except AuthError as exc:
        raise ContributionError(str(exc)) from None
    address = (data.address or "").strip()
    if len(address) > 400:
        raise ContributionError(_("L'adresse est trop longue (400 caractères au plus)."))
    message = " ".join((data.message or "").split())
    if len(message) > 280:
        raise ContributionError(_("Le message est trop long (280 caractères au plus)."))
    public_name = None
    if data.show_name:
        public_name = " ".join((data.public_name or "").split())[:120] or name[:120]

    org = await must_get(session, Organisation, campaign.org_id)
    sale = is_sale(amount, tier)
    # A gift part above zero to an organisation of general interest calls for a receipt: its address.
    receipt_due = not sale and org.general_interest
    try:
        donor = check_donor(data.donor, required=receipt_due and not address)
    except DonorError as exc:
        raise ContributionError(str(exc)) from None
    if donor is not None:
        address = donor.address
    vat = tier.vat_per_mille if tier is not None and sale and org.vat_liable else 0
    match = await session.scalar(select(Match).where(Match.campaign_id == campaign.id))

    if tier is not None and tier.stock is not None:
        taken = await session.execute(
            update(Tier).where(Tier.id == tier.id, Tier.remaining > 0).values(remaining=Tier.remaining - 1)
        )
        if rowcount(taken) != 1:
            raise ContributionError(_("Cette contrepartie est épuisée : choisissez-en une autre."))

    pledge = Pledge(
        campaign_id=campaign.id, tier_id=tier.id if tier else None, amount=amount, currency=currency,
        nature=Nature.SALE if sale else Nature.GIFT, vat_per_mille=vat, match_amount=match_share(amount, match),
        name=name, email=email, address=address, public_name=public_name, message=message,
        wants_updates=data.wants_updates, company_name=donor.company_name if donor else None, company_siren=donor.siren if donor else None,
        status=PledgeStatus.PENDING, link_base=link_base.rstrip("/"), created_at=now, updated_at=now,
    )
    session.add(pledge)
    await session.flush()
    pledge.access_token = pledge_token(secret_key, pledge.id)
    await session.flush()
    return pledge


# --- transitions --------------------------------------------------------------------


async def lock_campaign(session: AsyncSession, campaign_id: int) -> Campaign:
    return (await session.execute(
        select(Campaign).where(Campaign.id == campaign_id).with_for_update().execution_options(populate_existing=True)
    )).scalar_one()


async def move(
    session: AsyncSession,
    pledge_id: int,
    frm: tuple[PledgeStatus, ...],
    to: PledgeStatus,
    *,
    now: dt.datetime | None = None,
    **values,
) -> Pledge | None:
    """``frm`` → ``to`` once: the updated pledge, or None if it was not in one of ``frm``.

    ``frm`` states all count, or all don't: the totals then move by the difference.
    """
    counted_before = {s in COUNTED for s in frm}
    if len(counted_before) != 1:
        raise ValueError(f"mixed counted and uncounted source states: {frm}")
    was_counted = counted_before.pop()
    now_counted = to in COUNTED
    collects = to == PledgeStatus.PAID
    pledge = await session.get(Pledge, pledge_id)
    if pledge is None:
        return None
    if was_counted != now_counted or collects:
        await lock_campaign(session, pledge.campaign_id)
    stamps = {"updated_at": now or utcnow()}
    if to == PledgeStatus.ACTIVE:
        stamps["activated_at"] = stamps["updated_at"]
    elif to == PledgeStatus.PAID:
        stamps["paid_at"] = stamps["updated_at"]
    elif to in ENDED:
        stamps["ended_at"] = stamps["updated_at"]
    result = await session.execute(
        update(Pledge).where(Pledge.id == pledge_id, Pledge.status.in_(frm)).values(status=to, **{**stamps, **values})
    )
    if rowcount(result) != 1:
        return None
    await session.refresh(pledge)
    net = pledge.amount - pledge.amount_refunded
    campaign_changes: dict[str, ColumnElement[int]] = {}
    if was_counted != now_counted:
        sign_ = 1 if now_counted else -1
        campaign_changes.update(
            crowd_total=Campaign.crowd_total + sign_ * net,
            match_uncapped=Campaign.match_uncapped + sign_ * pledge.match_amount,
            backers_count=Campaign.backers_count + sign_,
        )
        if pledge.tier_id is not None:
            await session.execute(update(Tier).where(Tier.id == pledge.tier_id)
                                  .values(backers_count=Tier.backers_count + sign_))
    if collects:
        campaign_changes["collected_total"] = Campaign.collected_total + net
    if campaign_changes:
        await session.execute(update(Campaign).where(Campaign.id == pledge.campaign_id).values(**campaign_changes))
    if to in RELEASES_STOCK and pledge.tier_id is not None:
        await session.execute(update(Tier).where(Tier.id == pledge.tier_id, Tier.stock.is_not(None))
                              .values(remaining=Tier.remaining + 1))
    return pledge


async def reload_pledge(session: AsyncSession, pledge_id: int) -> Pledge:
    """The pledge as the database has it now, after an UPDATE that went around the session's
    copy. The caller just moved or found it: its absence is a bug."""
    pledge = await session.get(Pledge, pledge_id, populate_existing=True)
    if pledge is None:
        raise LookupError(f"Pledge {pledge_id!r} does not exist")
    return pledge


async def retake_stock(session: AsyncSession, pledge: Pledge) -> bool:
    """A pledge that had released its unit is paid after all: take the unit back if any is left."""
    if pledge.tier_id is None:
        return True
    taken = await session.execute(update(Tier).where(Tier.id == pledge.tier_id, Tier.stock.is_not(None), Tier.remaining > 0)
                                  .values(remaining=Tier.remaining - 1))
    if rowcount(taken) == 1:
        return True
    return (await session.scalar(select(Tier.stock).where(Tier.id == pledge.tier_id))) is None


async def record_refund(session: AsyncSession, pledge_id: int, refunded: int) -> int:
    """Stripe's refunded total for the pledge's charge (it only grows): returns what is newly
    refunded, with the campaign's totals and the match share brought down by it."""
    campaign_id = await session.scalar(select(Pledge.campaign_id).where(Pledge.id == pledge_id))
    if campaign_id is None:
        return 0
    await lock_campaign(session, campaign_id)
    pledge = (await session.execute(
        select(Pledge).where(Pledge.id == pledge_id).with_for_update().execution_options(populate_existing=True)
    )).scalar_one()
    if pledge.status != PledgeStatus.PAID:
        return 0
    refunded = min(int(refunded), pledge.amount)
    delta = refunded - pledge.amount_refunded
    if delta <= 0:
        return 0
    match = await session.scalar(select(Match).where(Match.campaign_id == pledge.campaign_id))
    remaining = pledge.amount - refunded
    new_share = min(pledge.match_amount, match_share(remaining, match) if match and match.status == MatchStatus.PLEDGED else pledge.match_amount)
    changes = {"crowd_total": Campaign.crowd_total - delta, "collected_total": Campaign.collected_total - delta,
               "match_uncapped": Campaign.match_uncapped - (pledge.match_amount - new_share)}
    if remaining == 0:
        changes["backers_count"] = Campaign.backers_count - 1
        if pledge.tier_id is not None:
            await session.execute(update(Tier).where(Tier.id == pledge.tier_id).values(backers_count=Tier.backers_count - 1))
    await session.execute(update(Campaign).where(Campaign.id == pledge.campaign_id).values(**changes))
    await session.execute(update(Pledge).where(Pledge.id == pledge.id).values(
        amount_refunded=refunded, match_amount=new_share, updated_at=utcnow()))
    await session.refresh(pledge)
    return delta
