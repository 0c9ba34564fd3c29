"""What we keep of Stripe: the event inbox, our outbound create calls, the latest state of
objects we mirror, one-off payments, and payout reconciliation.

Every effect is keyed by a Stripe id under a unique constraint, so it happens once
whichever path (webhook, sync, sweep, redirect page) gets there first.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from funding.db import Base, EnumText, one_of, utcnow
from funding.scoped import OrgScoped


class EventStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    PROCESSED = "processed"
    FAILED = "failed"  # to be retried
    DEAD = "dead"  # out of retries: a person looks at it


class RequestStatus(StrEnum):
    PENDING = "pending"  # committed, the call not answered yet
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # Stripe refused
    UNKNOWN = "unknown"  # no definite answer: the sweep retrieves before it ever creates again


class PaymentStatus(StrEnum):
    CREATED = "created"
    OPEN = "open"
    PAID = "paid"
    FAILED = "failed"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


class PayoutStatus(StrEnum):
    """Stripe's payout statuses."""

    PENDING = "pending"
    IN_TRANSIT = "in_transit"
    PAID = "paid"
    FAILED = "failed"
    CANCELED = "canceled"


class PaymentPurpose(StrEnum):
    """What a one-off payment pays; each domain registers how its purpose is booked."""

    DONATION = "donation"
    PLEDGE = "pledge"
    PASS = "pass"  # noqa: S105  (a coworking pass, not a password)
    INVOICE = "invoice"
    BAR_SALE = "bar_sale"
    BAR_TAB = "bar_tab"


EVENT_STATES = tuple(EventStatus)


class StripeEvent(Base):
    """The inbox: one row per Stripe event id, inserted-or-ignored, processed after commit."""

    __tablename__ = "stripe_events"
    __table_args__ = (
        CheckConstraint(one_of("status", EventStatus), name="status"),
        Index("ix_stripe_events_due", "status", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(120), index=True)
    livemode: Mapped[bool]
    api_version: Mapped[str | None] = mapped_column(String(40))
    created: Mapped[int] = mapped_column(BigInteger)
    object_id: Mapped[str | None] = mapped_column(String(255), index=True)
    payload: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(10), default="webhook")
    status: Mapped[EventStatus] = mapped_column(EnumText(EventStatus, 12), default=EventStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[dt.datetime | None]
    leased_by: Mapped[str | None] = mapped_column(String(80))  # the process holding the lease (funding.ops)
    last_error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[dt.datetime | None]


class StripeRequest(Base):
    """An object we asked Stripe to create, committed before the call.

    ``status`` is ``pending`` during the call, then ``succeeded`` (``stripe_id`` set),
    ``failed`` (Stripe refused) or ``unknown`` (no definite answer: the sweep looks for it
    before it ever creates again). An unknown request the sweep cannot settle on its own
    (the object cannot be looked up, and creating it again could bill twice) is *raised*
    to staff: ``raised_at`` set, ``error`` says what to check; the sweep leaves it alone.
    """

    __tablename__ = "stripe_requests"
    __table_args__ = (
        CheckConstraint(one_of("status", RequestStatus), name="status"),
        UniqueConstraint("ref", "resource", "attempt"),
        Index("ix_stripe_requests_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str] = mapped_column(String(200))
    resource: Mapped[str] = mapped_column(String(60))
    attempt: Mapped[int] = mapped_column(default=1)
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    params: Mapped[str] = mapped_column(Text)
    status: Mapped[RequestStatus] = mapped_column(EnumText(RequestStatus, 10), default=RequestStatus.PENDING)
    stripe_id: Mapped[str | None] = mapped_column(String(255), index=True)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    raised_at: Mapped[dt.datetime | None]


class InstallationFact(Base):
    """Facts of this installation (this database), written once at first use: ``stripe_key_prefix``,
    the prefix of our idempotency keys and the ``entrelab_installation`` metadata of what we
    create, so that two databases on one Stripe account never share a key or an object."""

    __tablename__ = "installation_facts"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))


class StripeObject(Base):
    """The latest state we know of an object with a lifecycle; never moved backwards."""

    __tablename__ = "stripe_objects"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(60), index=True)
    status: Mapped[str | None] = mapped_column(String(40))
    livemode: Mapped[bool] = mapped_column(default=False)
    version: Mapped[int] = mapped_column(BigInteger)  # unix time of the state we hold
    data: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Payment(OrgScoped, Base):
    """A one-off payment through Checkout (``payment`` mode): donations, passes, walk-in sales, pledges."""

    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint(one_of("status", PaymentStatus), name="status"),
        CheckConstraint(one_of("purpose", PaymentPurpose), name="purpose"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    purpose: Mapped[PaymentPurpose] = mapped_column(EnumText(PaymentPurpose, 40))
    ref: Mapped[str | None] = mapped_column(String(100))
    amount: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    description: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    name: Mapped[str | None] = mapped_column(String(200))
    # A gift's donor, for its tax receipt: postal address, and the company that gives, if one does.
    donor_address: Mapped[str | None] = mapped_column(Text)
    company_name: Mapped[str | None] = mapped_column(String(200))
    company_siren: Mapped[str | None] = mapped_column(String(9))
    donor_link: Mapped[str | None] = mapped_column(String(300))  # the donor's signed page (their receipt)
    status: Mapped[PaymentStatus] = mapped_column(EnumText(PaymentStatus, 10), default=PaymentStatus.CREATED)
    checkout_session_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    payment_intent_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    amount_refunded: Mapped[int] = mapped_column(default=0)
    # a gift's: what refunds and a lost dispute took back (amount_refunded mirrors the charge's refunds only)
    taken_back: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    extra: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    paid_at: Mapped[dt.datetime | None]


class Payout(Base):
    """A Stripe payout and whether its balance transactions add up and are all in the books."""

    __tablename__ = "stripe_payouts"
    __table_args__ = (CheckConstraint(one_of("status", PayoutStatus), name="status"),)

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    amount: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[PayoutStatus] = mapped_column(EnumText(PayoutStatus, 20))
    arrival_date: Mapped[int | None] = mapped_column(BigInteger)
    reconciled: Mapped[bool] = mapped_column(default=False)
    transactions_net: Mapped[int | None]
    difference: Mapped[int | None]
    missing_entries: Mapped[str] = mapped_column(Text, default="[]")
    checked_at: Mapped[dt.datetime | None]


VAT_RATES = (0, 21, 55, 100, 200)  # per mille: the French rates (2,1 %, 5,5 %, 10 %, 20 %) and 0 (exempt)


class TaxRate(Base):
    """A French VAT rate as a Stripe Tax Rate, created once (the idempotency key is this row)."""

    __tablename__ = "stripe_tax_rates"
    __table_args__ = (
        CheckConstraint("vat_rate IN (0, 21, 55, 100, 200)", name="vat_rate"),
        UniqueConstraint("vat_rate", "inclusive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    vat_rate: Mapped[int]
    inclusive: Mapped[bool]
    stripe_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

