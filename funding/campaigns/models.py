"""Crowdfunding campaigns: campaigns, tiers, pledges, public matchfunding, tax receipts.

The campaign row carries its running totals (crowd, match, backers) and each tier its
stock and backers: they change in the same transaction as the pledge whose state moves,
so a campaign page never adds up its pledges. Database triggers (migration 0004) keep a
published campaign's terms fixed, its status moving forwards only, and tax receipts
numbered without gaps and never deleted.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from funding.db import Base, EnumText, one_of, utcnow
from funding.scoped import CampaignScoped, OrgScoped


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    LIVE = "live"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CLOSED = "closed"


class Mode(StrEnum):
    ALL_OR_NOTHING = "all_or_nothing"
    KEEP_IT_ALL = "keep_it_all"


class TierKind(StrEnum):
    GIFT = "gift"
    REWARD = "reward"


class Nature(StrEnum):
    """What a contribution is for the books: a gift (tax receipt) or a sale (VAT, no receipt)."""

    GIFT = "gift"
    SALE = "sale"


class PledgeStatus(StrEnum):
    PENDING = "pending"                  # Checkout open: stock reserved, nothing counted yet
    ACTIVE = "active"                    # all-or-nothing: card saved, charged at the deadline if the goal is met
    CHARGING = "charging"                # claimed by the deadline job, off-session charge in flight
    ACTION_REQUIRED = "action_required"  # the bank wants the backer to authenticate (3-D Secure) on session
    CARD_DECLINED = "card_declined"      # declined at the deadline: waiting for a new card during the grace window
    RETRY = "retry"                      # a new card was saved: the next round charges it
    PAID = "paid"                        # the money is in
    FAILED = "failed"                    # grace window over without payment
    CANCELED = "canceled"                # canceled by the backer before the deadline
    EXPIRED = "expired"                  # Checkout abandoned or expired
    VOID = "void"                        # all-or-nothing campaign missed its goal: never charged


class MatchStatus(StrEnum):
    PLEDGED = "pledged"
    RELEASED = "released"
    CANCELED = "canceled"


class EntryKind(StrEnum):
    """Why a ledger entry belongs to a campaign."""

    PAYMENT = "payment"
    REFUND = "refund"
    DISPUTE = "dispute"
    DELIVERY = "delivery"
    MATCH = "match"


CAMPAIGN_STATES = tuple(CampaignStatus)
MODES = tuple(Mode)
TIER_KINDS = tuple(TierKind)
VAT_RATES = (0, 55, 100, 200)  # per mille: none, 5,5 %, 10 %, 20 %
NATURES = tuple(Nature)
PLEDGE_STATES = tuple(PledgeStatus)
# States whose amount counts in the campaign's totals (and whose tier unit stays taken).
COUNTED = (PledgeStatus.ACTIVE, PledgeStatus.CHARGING, PledgeStatus.ACTION_REQUIRED, PledgeStatus.CARD_DECLINED,
           PledgeStatus.RETRY, PledgeStatus.PAID, PledgeStatus.VOID)
IN_FLIGHT = (PledgeStatus.CHARGING, PledgeStatus.ACTION_REQUIRED, PledgeStatus.CARD_DECLINED, PledgeStatus.RETRY)
MATCH_STATES = tuple(MatchStatus)


class Campaign(OrgScoped, Base):
    __tablename__ = "campaigns"
    __table_args__ = (
        ForeignKeyConstraint(["site_id", "org_id"], ["sites.id", "sites.org_id"]),
        CheckConstraint(one_of("status", CAMPAIGN_STATES), name="status"),
        CheckConstraint(one_of("mode", MODES), name="mode"),
        CheckConstraint("goal > 0", name="goal_positive"),
        CheckConstraint("min_amount > 0 AND max_amount >= min_amount", name="amount_bounds"),
        CheckConstraint("ends_at > starts_at", name="dates_in_order"),
        CheckConstraint("length(currency) = 3", name="currency_code"),
        CheckConstraint("crowd_total >= 0 AND match_uncapped >= 0 AND backers_count >= 0 AND collected_total >= 0",
                        name="totals_not_negative"),
        Index("ix_campaigns_status_ends", "status", "ends_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    site_id: Mapped[int] = mapped_column(index=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(String(300), default="")
    description: Mapped[str] = mapped_column(Text, default="")  # safe formatted text (see richtext)
    image_url: Mapped[str | None] = mapped_column(String(500))
    goal: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    mode: Mapped[Mode] = mapped_column(EnumText(Mode, 16))
    status: Mapped[CampaignStatus] = mapped_column(EnumText(CampaignStatus, 10), default=CampaignStatus.DRAFT)
    starts_at: Mapped[dt.datetime]
    ends_at: Mapped[dt.datetime]
    min_amount: Mapped[int] = mapped_column(default=100)
    max_amount: Mapped[int] = mapped_column(default=1_000_000)
    free_amount: Mapped[bool] = mapped_column(default=True)  # a backer may give without choosing a tier
    # Running totals, moved with every pledge transition (never recomputed for a page).
    crowd_total: Mapped[int] = mapped_column(default=0)      # counted pledges, net of refunds
    collected_total: Mapped[int] = mapped_column(default=0)  # money actually received, net of refunds
    match_uncapped: Mapped[int] = mapped_column(default=0)   # sum of the counted pledges' match shares
    backers_count: Mapped[int] = mapped_column(default=0)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    published_at: Mapped[dt.datetime | None]
    decided_at: Mapped[dt.datetime | None]
    closed_at: Mapped[dt.datetime | None]


class Tier(CampaignScoped, Base):
    """A fixed contribution: a gift, or a reward (whose value decides gift or sale)."""

    __tablename__ = "campaign_tiers"
    __table_args__ = (
        CheckConstraint(one_of("kind", TIER_KINDS), name="kind"),
        CheckConstraint(one_of("vat_per_mille", VAT_RATES), name="vat_rate"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("reward_value >= 0", name="reward_value"),
        CheckConstraint("(stock IS NULL AND remaining IS NULL) OR (remaining >= 0 AND remaining <= stock)", name="stock"),
        CheckConstraint("backers_count >= 0", name="backers"),
        Index("ix_campaign_tiers_campaign", "campaign_id", "position"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    position: Mapped[int] = mapped_column(default=0)
    title: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    amount: Mapped[int]
    kind: Mapped[TierKind] = mapped_column(EnumText(TierKind, 10), default=TierKind.GIFT)
    reward_value: Mapped[int] = mapped_column(default=0)
    vat_per_mille: Mapped[int] = mapped_column(default=0)
    stock: Mapped[int | None]
    remaining: Mapped[int | None]
    backers_count: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Match(CampaignScoped, Base):
    """A public funder's promise to match the crowd, released only if the campaign succeeds."""

    __tablename__ = "campaign_matches"
    __table_args__ = (
        CheckConstraint(one_of("status", MATCH_STATES), name="status"),
        CheckConstraint("ratio_num > 0 AND ratio_den > 0", name="ratio"),
        CheckConstraint("cap_per_pledge > 0 AND total_cap > 0", name="caps"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), unique=True)
    funder_name: Mapped[str] = mapped_column(String(200))
    funder_siret: Mapped[str | None] = mapped_column(String(14))
    reference: Mapped[str] = mapped_column(String(100))
    ratio_num: Mapped[int] = mapped_column(default=1)  # euros from the funder…
    ratio_den: Mapped[int] = mapped_column(default=1)  # …for this many euros from the crowd
    cap_per_pledge: Mapped[int]
    total_cap: Mapped[int]
    status: Mapped[MatchStatus] = mapped_column(EnumText(MatchStatus, 10), default=MatchStatus.PLEDGED)
    released_amount: Mapped[int | None]
    released_at: Mapped[dt.datetime | None]
    grant_id: Mapped[int | None] = mapped_column(ForeignKey("grants.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Pledge(CampaignScoped, Base):
    """One backer's contribution to one campaign, with its Stripe references."""

    __tablename__ = "campaign_pledges"
    __table_args__ = (
        CheckConstraint(one_of("status", PLEDGE_STATES), name="status"),
        CheckConstraint(one_of("nature", NATURES), name="nature"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("amount_refunded >= 0 AND amount_refunded <= amount", name="refunded"),
        CheckConstraint("match_amount >= 0", name="match_amount"),
        Index("ix_campaign_pledges_campaign", "campaign_id", "id"),
        Index("ix_campaign_pledges_status", "status", "campaign_id"),
        Index("ix_campaign_pledges_email", "email"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    tier_id: Mapped[int | None] = mapped_column(ForeignKey("campaign_tiers.id"))
    amount: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    nature: Mapped[Nature] = mapped_column(EnumText(Nature, 5), default=Nature.GIFT)
    vat_per_mille: Mapped[int] = mapped_column(default=0)
    match_amount: Mapped[int] = mapped_column(default=0)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254))
    address: Mapped[str] = mapped_column(Text, default="")
    company_name: Mapped[str | None] = mapped_column(String(200))  # a company gives: its receipt is for companies
    company_siren: Mapped[str | None] = mapped_column(String(9))
    public_name: Mapped[str | None] = mapped_column(String(120))  # None: the backer stays anonymous
    message: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[PledgeStatus] = mapped_column(EnumText(PledgeStatus, 16), default=PledgeStatus.PENDING)
    # The backer's signed link (see, cancel, new card, confirm), built when the pledge is made:
    # emails sent later by webhooks and jobs use it as it was given.
    access_token: Mapped[str | None] = mapped_column(String(200), unique=True)
    link_base: Mapped[str] = mapped_column(String(200), default="")
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"), unique=True)
    checkout_session_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    customer_id: Mapped[str | None] = mapped_column(String(255))
    payment_method_id: Mapped[str | None] = mapped_column(String(255))
    payment_intent_id: Mapped[str | None] = mapped_column(String(255), index=True)
    charge_attempt: Mapped[int] = mapped_column(default=0)
    card_sessions: Mapped[int] = mapped_column(default=0)
    claimed_at: Mapped[dt.datetime | None]
    grace_until: Mapped[dt.datetime | None]
    amount_refunded: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    activated_at: Mapped[dt.datetime | None]
    paid_at: Mapped[dt.datetime | None]
    ended_at: Mapped[dt.datetime | None]  # canceled, expired, failed or void
    delivered_at: Mapped[dt.datetime | None]
    wants_updates: Mapped[bool] = mapped_column(default=False)  # the backer agreed to receive the campaign's news


class CampaignUpdate(CampaignScoped, Base):
    """News of a campaign written by its staff: shown on its page, emailed to the backers who
    agreed. Published once, never edited (a correction is another update)."""

    __tablename__ = "campaign_updates"
    __table_args__ = (Index("ix_campaign_updates_campaign", "campaign_id", "published_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)  # safe formatted text (see richtext)
    author: Mapped[str] = mapped_column(String(254))
    published_at: Mapped[dt.datetime]
    recipients: Mapped[int] = mapped_column(default=0)  # emails queued when it was published


class CampaignReminder(CampaignScoped, Base):
    """A visitor asked to be reminded 48 hours before an all-or-nothing campaign ends; sent once."""

    __tablename__ = "campaign_reminders"
    __table_args__ = (UniqueConstraint("campaign_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    email: Mapped[str] = mapped_column(String(254))
    locale: Mapped[str] = mapped_column(String(5), default="fr")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None]


class CampaignEntry(CampaignScoped, Base):
    """Which ledger entries belong to which campaign (the entry itself carries the site)."""

    __tablename__ = "campaign_entries"
    __table_args__ = (CheckConstraint(one_of("kind", EntryKind), name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    pledge_id: Mapped[int | None] = mapped_column(ForeignKey("campaign_pledges.id"))
    source_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[EntryKind] = mapped_column(EnumText(EntryKind, 20))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class TaxReceipt(OrgScoped, Base):
    """A reçu fiscal for a gift — a campaign pledge, a one-off payment (/soutenir), or a donor's
    year of recurring gifts, one of the three — numbered per organisation and year without gaps (a trigger refuses any other number),
    never deleted, only ever voided. With ``donor_siren`` it is a company's (cerfa 16216)."""

    __tablename__ = "tax_receipts"
    __table_args__ = (
        UniqueConstraint("org_id", "year", "number"),
        UniqueConstraint("pledge_id", "revision"),
        UniqueConstraint("payment_id", "revision"),
        UniqueConstraint("org_id", "donor_email", "annual_year", "revision"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("(pledge_id IS NOT NULL AND payment_id IS NULL AND annual_year IS NULL) "
                        "OR (pledge_id IS NULL AND payment_id IS NOT NULL AND annual_year IS NULL) "
                        "OR (pledge_id IS NULL AND payment_id IS NULL AND annual_year IS NOT NULL)", name="one_gift"),
        CheckConstraint("number > 0", name="number_positive"),
        Index("ix_tax_receipts_donor", "org_id", "donor_email", "year"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    year: Mapped[int]
    number: Mapped[int]
    pledge_id: Mapped[int | None] = mapped_column(ForeignKey("campaign_pledges.id"))
    revision: Mapped[int] = mapped_column(default=1)  # a partial refund voids and reissues
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"))  # a one-off gift (/soutenir)
    # a donor's year of recurring gifts (the year the instalments were paid; ``year`` is the series')
    annual_year: Mapped[int | None]
    donor_siren: Mapped[str | None] = mapped_column(String(9))  # set: the donor is a company (article 238 bis)
    donor_name: Mapped[str] = mapped_column(String(200))
    donor_address: Mapped[str] = mapped_column(Text, default="")
    donor_email: Mapped[str] = mapped_column(String(254))
    amount: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    paid_on: Mapped[dt.date] = mapped_column(Date)
    method: Mapped[str] = mapped_column(String(40), default="carte bancaire")
    issued_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    voided_at: Mapped[dt.datetime | None]
    void_reason: Mapped[str | None] = mapped_column(String(200))
    # a one-off gift's receipt taken into its donor's annual receipt (voided with it): that annual receipt
    replaced_by_id: Mapped[int | None] = mapped_column(ForeignKey("tax_receipts.id"))


class TaxReceiptCounter(OrgScoped, Base):
    """The last number issued per organisation and year; its row lock serialises issuing."""

    __tablename__ = "tax_receipt_counters"

    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last_number: Mapped[int] = mapped_column(default=0)


class ReceiptIssuer(OrgScoped, Base):
    """What a tax receipt says about the organisation that issues it."""

    __tablename__ = "tax_receipt_issuers"

    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True, autoincrement=False)
    purpose: Mapped[str] = mapped_column(Text, default="")
    signatory: Mapped[str] = mapped_column(String(200), default="")
    signatory_role: Mapped[str] = mapped_column(String(120), default="")
    place: Mapped[str] = mapped_column(String(120), default="")
