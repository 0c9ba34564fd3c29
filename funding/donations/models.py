"""Recurring gifts (/soutenir, monthly or yearly): one row per gift, one row per paid instalment.

A gift is a Stripe subscription of its own customer (never a coworking member's: a donor who
is also a member keeps two customers, so the member's invoices never carry a gift). Its state
is Stripe's, mirrored forwards only (``version``: the unix time of the state held). Each paid
invoice is an instalment, once (unique invoice id); its money is booked from the charge's
balance transaction (75411, fee 627), like a one-off gift.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from funding.db import Base, EnumText, one_of, utcnow
from funding.scoped import OrgScoped


class GiftInterval(StrEnum):
    MONTH = "month"
    YEAR = "year"


class GiftStatus(StrEnum):
    """Ours before Stripe has a subscription (created, open, unknown, expired), then Stripe's."""

    CREATED = "created"
    OPEN = "open"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    INCOMPLETE = "incomplete"
    INCOMPLETE_EXPIRED = "incomplete_expired"
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    UNPAID = "unpaid"
    PAUSED = "paused"
    CANCELED = "canceled"


# A skipped instalment: collection resumes this long after its billing date (Stripe voids the
# invoices generated before resumes_at; the next period's is a month or a year away).
SKIP_MARGIN = dt.timedelta(days=1)

LIVE_GIFT_STATUSES = (GiftStatus.ACTIVE, GiftStatus.PAST_DUE, GiftStatus.TRIALING, GiftStatus.INCOMPLETE,
                      GiftStatus.UNPAID, GiftStatus.PAUSED)


class RecurringGift(OrgScoped, Base):
    __tablename__ = "recurring_gifts"
    __table_args__ = (
        CheckConstraint(one_of("status", GiftStatus), name="status"),
        CheckConstraint(one_of("interval", GiftInterval), name="interval"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    amount: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    interval: Mapped[GiftInterval] = mapped_column(EnumText(GiftInterval, 5))
    email: Mapped[str] = mapped_column(String(254), index=True)
    name: Mapped[str] = mapped_column(String(200))
    donor_address: Mapped[str | None] = mapped_column(Text)
    company_name: Mapped[str | None] = mapped_column(String(200))
    company_siren: Mapped[str | None] = mapped_column(String(9))
    status: Mapped[GiftStatus] = mapped_column(EnumText(GiftStatus, 20), default=GiftStatus.CREATED)
    checkout_session_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255))
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    canceled_at: Mapped[dt.datetime | None]
    # The subscription's pause_collection.resumes_at: an instalment skipped, collection resumes then.
    collection_resumes_at: Mapped[dt.datetime | None]

    @property
    def skipped_instalment_at(self) -> dt.datetime | None:
        """The billing date of the skipped instalment (collection resumes SKIP_MARGIN after it)."""
        return self.collection_resumes_at - SKIP_MARGIN if self.collection_resumes_at else None


class GiftChangeKind(StrEnum):
    AMOUNT = "amount"  # a new amount, from the next instalment
    SKIP = "skip"      # the next instalment skipped


class GiftChangeStatus(StrEnum):
    REQUESTED = "requested"  # recorded, then asked of Stripe
    APPLIED = "applied"      # Stripe confirmed it (its answer, or the subscription as fetched after an event)
    REFUSED = "refused"      # Stripe said no: nothing changed
    UNKNOWN = "unknown"      # no answer: the subscription's next event settles it


class RecurringGiftChange(OrgScoped, Base):
    """A change the donor asked for from the backer space: its id keys the subscription update
    (``recurring-gift-change:<id>``); the gift itself changes only when Stripe confirms."""

    __tablename__ = "recurring_gift_changes"
    __table_args__ = (
        CheckConstraint(one_of("kind", GiftChangeKind), name="kind"),
        CheckConstraint(one_of("status", GiftChangeStatus), name="status"),
        CheckConstraint("amount IS NULL OR amount > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    gift_id: Mapped[int] = mapped_column(ForeignKey("recurring_gifts.id"), index=True)
    kind: Mapped[GiftChangeKind] = mapped_column(EnumText(GiftChangeKind, 10))
    amount: Mapped[int | None]           # the new amount (kind amount)
    previous_amount: Mapped[int | None]
    instalment_at: Mapped[dt.datetime]   # the first instalment at the new amount, or the one skipped
    resumes_at: Mapped[dt.datetime | None]  # kind skip: when collection resumes
    status: Mapped[GiftChangeStatus] = mapped_column(EnumText(GiftChangeStatus, 10), default=GiftChangeStatus.REQUESTED)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    applied_at: Mapped[dt.datetime | None]


class RecurringGiftPayment(OrgScoped, Base):
    """A paid instalment of a recurring gift: its invoice, once; what was taken back of it."""

    __tablename__ = "recurring_gift_payments"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),
                      CheckConstraint("amount_refunded >= 0 AND amount_refunded <= amount", name="refunded"))

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    gift_id: Mapped[int] = mapped_column(ForeignKey("recurring_gifts.id"), index=True)
    stripe_invoice_id: Mapped[str] = mapped_column(String(255), unique=True)
    payment_intent_id: Mapped[str | None] = mapped_column(String(255))
    amount: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    paid_at: Mapped[dt.datetime]
    amount_refunded: Mapped[int] = mapped_column(default=0)  # refunds and a lost dispute: Stripe's total, only grows
