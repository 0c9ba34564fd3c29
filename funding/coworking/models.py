"""Coworking tables: plans per site and their Stripe prices, members, the subscriptions and
invoices mirrored from Stripe, subscription checkouts, day passes and the days they served.

Uniqueness lives in the database (Stripe ids, one price generation per plan, one pass day
per member and day); subscription and invoice rows carry the ``version`` of the Stripe
state they hold and only a newer state replaces it.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from funding.db import Base, EnumText, one_of, utcnow
from funding.scoped import MemberScoped, OrgScoped, SiteScoped


class PlanKind(StrEnum):
    WORKSPACE = "workspace"    # a desk or an office, monthly
    MEMBERSHIP = "membership"  # the association's yearly fee
    PASS = "pass"              # noqa: S105  (days bought at once: a kind of plan, not a password)


class Interval(StrEnum):
    MONTH = "month"
    YEAR = "year"


class PriceStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    ARCHIVED = "archived"


class CheckoutStatus(StrEnum):
    CREATED = "created"
    OPEN = "open"
    COMPLETE = "complete"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


class JoinStatus(StrEnum):
    OPEN = "open"      # the address proved, Checkout opened: nobody's account yet
    JOINED = "joined"  # paid: its account and member record exist (``member_id``)


class SubscriptionStatus(StrEnum):
    """Stripe's subscription statuses, as Stripe spells them."""

    INCOMPLETE = "incomplete"
    INCOMPLETE_EXPIRED = "incomplete_expired"
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    UNPAID = "unpaid"
    CANCELED = "canceled"
    PAUSED = "paused"


class InvoiceStatus(StrEnum):
    """Stripe's invoice statuses."""

    DRAFT = "draft"
    OPEN = "open"
    PAID = "paid"
    VOID = "void"
    UNCOLLECTIBLE = "uncollectible"


class CreditNoteStatus(StrEnum):
    """Ours first (``pending``: called for, not yet issued; ``refused``: Stripe said no), then Stripe's."""

    PENDING = "pending"
    REFUSED = "refused"
    ISSUED = "issued"
    VOID = "void"


class CreditNoteCause(StrEnum):
    REFUND = "refund"
    DISPUTE = "dispute"
    STRIPE = "stripe"  # issued in Stripe by someone else (the Dashboard): mirrored and booked all the same


PLAN_KINDS = tuple(PlanKind)
SUBSCRIPTION_STATUSES = tuple(SubscriptionStatus)
LIVE_STATUSES = (SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE,
                 SubscriptionStatus.UNPAID, SubscriptionStatus.PAUSED)
INVOICE_STATUSES = tuple(InvoiceStatus)
# Subscriptions that still run (and renew at their period's end, unless canceled by then).
RUNNING = (SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING, SubscriptionStatus.PAST_DUE)


class Plan(SiteScoped, Base):
    """What a site sells: a monthly desk or office, the yearly membership fee, or a pass of N days.

    ``price_ht`` is in minor units before VAT; ``vat_rate`` is per mille (200 = 20 %). The
    Stripe price is the amount the member pays (TTC); the books split it back.
    """

    __tablename__ = "coworking_plans"
    __table_args__ = (
        UniqueConstraint("site_id", "code"),
        CheckConstraint(one_of("kind", PlanKind), name="kind"),
        CheckConstraint("price_ht > 0", name="price_positive"),
        CheckConstraint("vat_rate >= 0 AND vat_rate < 1000", name="vat_rate"),
        CheckConstraint("(kind = 'pass' AND pass_days > 0 AND interval IS NULL)"
                        " OR (kind <> 'pass' AND pass_days IS NULL AND interval IN ('month', 'year'))", name="shape"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[PlanKind] = mapped_column(EnumText(PlanKind, 12))
    interval: Mapped[Interval | None] = mapped_column(EnumText(Interval, 8))
    pass_days: Mapped[int | None]
    price_ht: Mapped[int]
    vat_rate: Mapped[int] = mapped_column(default=0)
    account: Mapped[str] = mapped_column(String(20))
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    company_only: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)
    position: Mapped[int] = mapped_column(default=0)
    stripe_product_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class PlanPrice(Base):
    """One Stripe Price of a plan. A new amount is a new generation (``seq``), never an edit;
    the previous generation is archived in Stripe (``active=false``) and here."""

    __tablename__ = "coworking_plan_prices"
    __table_args__ = (
        UniqueConstraint("plan_id", "seq"),
        CheckConstraint(one_of("status", PriceStatus), name="status"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("coworking_plans.id"), index=True)
    seq: Mapped[int]
    amount: Mapped[int]  # TTC, what the member pays
    price_ht: Mapped[int]
    vat_rate: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    interval: Mapped[Interval | None] = mapped_column(EnumText(Interval, 8))
    stripe_price_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    status: Mapped[PriceStatus] = mapped_column(EnumText(PriceStatus, 10), default=PriceStatus.PENDING)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    archived_at: Mapped[dt.datetime | None]


class Member(OrgScoped, Base):
    """A person (``users`` row, role member) who pays a site: their Stripe customer and the
    company details printed on their invoices."""

    __tablename__ = "coworking_members"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), unique=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    company_name: Mapped[str | None] = mapped_column(String(200))
    siren: Mapped[str | None] = mapped_column(String(9))
    vat_number: Mapped[str | None] = mapped_column(String(20))
    address: Mapped[str] = mapped_column(Text, default="", server_default="")
    phone: Mapped[str | None] = mapped_column(String(30))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    @property
    def aux_code(self) -> str:
        """The member's auxiliary account under 411 (one per member, in each organisation's books)."""
        return f"M{self.id:06d}"


class Checkout(MemberScoped, Base):
    """A subscription checkout we opened for a member, committed before the Stripe call."""

    __tablename__ = "coworking_checkouts"
    __table_args__ = (CheckConstraint(one_of("status", CheckoutStatus), name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("coworking_members.id"), index=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("coworking_plans.id"))
    price_id: Mapped[int] = mapped_column(ForeignKey("coworking_plan_prices.id"))
    status: Mapped[CheckoutStatus] = mapped_column(EnumText(CheckoutStatus, 10), default=CheckoutStatus.CREATED)
    checkout_session_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class JoinRequest(OrgScoped, Base):
    """A join whose address was proved by its email link, waiting for its first payment: the
    details typed in the form and the Stripe customer Checkout charges. Its account and member
    record are created when Stripe reports the payment (``coworking.members.joined_member``),
    never before; a join that is never paid leaves no account behind."""

    __tablename__ = "coworking_join_requests"
    __table_args__ = (CheckConstraint(one_of("status", JoinStatus), name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    plan_id: Mapped[int] = mapped_column(ForeignKey("coworking_plans.id"))
    link_digest: Mapped[str] = mapped_column(String(64), unique=True)  # the email link's: one request per link
    email: Mapped[str] = mapped_column(String(254), index=True)
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(30))
    company_name: Mapped[str | None] = mapped_column(String(200))
    siren: Mapped[str | None] = mapped_column(String(9))
    vat_number: Mapped[str | None] = mapped_column(String(20))
    locale: Mapped[str] = mapped_column(String(5), default="fr")
    attempts: Mapped[int] = mapped_column(default=0)  # Checkout sessions opened (each its own idempotency key)
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    checkout_session_id: Mapped[str | None] = mapped_column(String(255))  # the latest opened, expired by the next
    member_id: Mapped[int | None] = mapped_column(ForeignKey("coworking_members.id"))
    status: Mapped[JoinStatus] = mapped_column(EnumText(JoinStatus, 10), default=JoinStatus.OPEN)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    joined_at: Mapped[dt.datetime | None] = mapped_column()


class Subscription(SiteScoped, Base):
    """A Stripe subscription of a member, as Stripe last told us (newer ``version`` wins;
    ``canceled`` and ``incomplete_expired`` are final)."""

    __tablename__ = "coworking_subscriptions"
    __table_args__ = (
        CheckConstraint(one_of("status", SubscriptionStatus), name="status"),
        CheckConstraint(one_of("kind", PlanKind), name="kind"),
        Index("ix_coworking_subscriptions_member_status", "member_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("coworking_members.id"))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("coworking_plans.id"))
    kind: Mapped[PlanKind] = mapped_column(EnumText(PlanKind, 12), default=PlanKind.WORKSPACE)
    stripe_subscription_id: Mapped[str] = mapped_column(String(255), unique=True)
    stripe_price_id: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[SubscriptionStatus] = mapped_column(EnumText(SubscriptionStatus, 20))
    current_period_start: Mapped[dt.datetime | None]
    current_period_end: Mapped[dt.datetime | None]
    cancel_at_period_end: Mapped[bool] = mapped_column(default=False)
    cancel_at: Mapped[dt.datetime | None]
    canceled_at: Mapped[dt.datetime | None]
    ended_at: Mapped[dt.datetime | None]
    started_at: Mapped[dt.datetime]
    past_due_since: Mapped[dt.datetime | None]
    version: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Invoice(SiteScoped, Base):
    """A finalised Stripe invoice of a member: amounts, links, and its lines as booked
    (JSON: amount TTC, base, VAT, account, period per line)."""

    __tablename__ = "coworking_invoices"
    __table_args__ = (
        CheckConstraint(one_of("status", InvoiceStatus), name="status"),
        Index("ix_coworking_invoices_member_status", "member_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("coworking_members.id"))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    stripe_invoice_id: Mapped[str] = mapped_column(String(255), unique=True)
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(255), index=True)
    number: Mapped[str | None] = mapped_column(String(60))
    status: Mapped[InvoiceStatus] = mapped_column(EnumText(InvoiceStatus, 16))
    billing_reason: Mapped[str | None] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[int]
    amount_due: Mapped[int]
    amount_paid: Mapped[int]
    amount_remaining: Mapped[int]
    attempt_count: Mapped[int] = mapped_column(default=0)
    hosted_invoice_url: Mapped[str | None] = mapped_column(Text)
    invoice_pdf: Mapped[str | None] = mapped_column(Text)
    issued_at: Mapped[dt.datetime]
    paid_at: Mapped[dt.datetime | None]
    lines: Mapped[str] = mapped_column(Text, default="[]")
    version: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class CreditNote(SiteScoped, Base):
    """A credit note (avoir) on a member's invoice: called for by a refund or a lost dispute
    (``cause_id``, once each), issued in Stripe by the worker, then booked as the sale's mirror
    ([VT] D 706… · D 4457x · C 411) with its own number; its lines as booked (JSON)."""

    __tablename__ = "coworking_credit_notes"
    __table_args__ = (
        CheckConstraint(one_of("status", CreditNoteStatus), name="status"),
        CheckConstraint(one_of("cause", CreditNoteCause), name="cause"),
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_coworking_credit_notes_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("coworking_invoices.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("coworking_members.id"), index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    cause: Mapped[CreditNoteCause] = mapped_column(EnumText(CreditNoteCause, 8))
    cause_id: Mapped[str] = mapped_column(String(255), unique=True)
    amount: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[CreditNoteStatus] = mapped_column(EnumText(CreditNoteStatus, 8), default=CreditNoteStatus.PENDING)
    stripe_credit_note_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    number: Mapped[str | None] = mapped_column(String(60))
    lines: Mapped[str] = mapped_column(Text, default="[]")
    issued_at: Mapped[dt.datetime | None]
    voided_at: Mapped[dt.datetime | None]
    pdf_url: Mapped[str | None] = mapped_column(Text)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Pass(SiteScoped, Base):
    """Days bought at once (a day pass, a 10-day pass), paid through Checkout ``payment`` mode."""

    __tablename__ = "coworking_passes"
    __table_args__ = (CheckConstraint("days_used >= 0 AND days_used <= days_total", name="days"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("coworking_members.id"), index=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("coworking_plans.id"))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), unique=True)
    days_total: Mapped[int]
    days_used: Mapped[int] = mapped_column(default=0)
    purchased_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_on: Mapped[dt.date] = mapped_column(Date)


class PassDay(MemberScoped, Base):
    """A day a member spent on a pass: at most one per member and day."""

    __tablename__ = "coworking_pass_days"
    __table_args__ = (UniqueConstraint("member_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pass_id: Mapped[int] = mapped_column(ForeignKey("coworking_passes.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("coworking_members.id"))
    day: Mapped[dt.date] = mapped_column(Date)
    recorded_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
