"""Bar tables: products, the till's chain head per site, sale lines, walk-in tickets,
settlement batches, closings and yearly archives.

Sale lines are the cash-register record (ACCOUNTING.md §5): inserted once, numbered
without gaps and SHA-256-chained per site, never updated or deleted — the database
refuses it (triggers in migration 0006); a mistake is corrected by a cancelling line that
references the original. A line is billed by being claimed into a batch: one row in
``bar_batch_lines`` whose primary key is the line, so no line can be billed twice.
Closings and archives are chained per site too and never change. What each tab owes is
kept beside them (``bar_tabs``), by the database, as lines are rung and claimed.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from funding.db import Base, EnumText, one_of, utcnow
from funding.scoped import OrgScoped, SiteScoped

GENESIS_HASH = "0" * 64
VAT_RATES = (55, 100, 200)  # per mille: 5,5 %, 10 %, 20 %


class TicketStatus(StrEnum):
    OPEN = "open"
    PAID = "paid"
    CANCELED = "canceled"


class LineKind(StrEnum):
    SALE = "sale"
    CANCEL = "cancel"  # a cancelling line, referencing the line it cancels


class BatchStatus(StrEnum):
    READY = "ready"    # cut from the tab, not billed yet
    BILLED = "billed"  # on an invoice, or charged: payment on its way
    DUE = "due"        # the member pays it from their area
    PAID = "paid"
    EMPTY = "empty"    # nothing was left to bill


class BatchMethod(StrEnum):
    INVOICE_ITEM = "invoice_item"      # on the member's next subscription invoice
    PAYMENT_INTENT = "payment_intent"  # off session on their saved card
    DUE = "due"                        # to be paid by the member from their area…
    CHECKOUT = "checkout"              # …which they did, through Checkout


class TillClosingKind(StrEnum):
    DAY = "day"
    MONTH = "month"
    YEAR = "year"


BATCH_STATES = tuple(BatchStatus)


class Product(SiteScoped, Base):
    """What a site's bar sells. ``price`` is what the customer pays (TTC), in minor units."""

    __tablename__ = "bar_products"
    __table_args__ = (
        UniqueConstraint("site_id", "name"),
        CheckConstraint("price > 0", name="price_positive"),
        CheckConstraint("vat_rate IN (55, 100, 200)", name="vat_rate"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    category: Mapped[str] = mapped_column(String(40), default="")
    price: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    vat_rate: Mapped[int]
    active: Mapped[bool] = mapped_column(default=True)
    position: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class TillHead(OrgScoped, Base):
    """Per site: the last sale line's number and hash, the last closing's hash and the last
    closed day. Advanced by the database triggers, only ever forwards."""

    __tablename__ = "bar_heads"

    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    last_seq: Mapped[int] = mapped_column(default=0)
    last_hash: Mapped[str] = mapped_column(String(64), default=GENESIS_HASH)
    last_closing_hash: Mapped[str] = mapped_column(String(64), default=GENESIS_HASH)
    last_archive_hash: Mapped[str] = mapped_column(String(64), default=GENESIS_HASH)
    closed_through: Mapped[dt.date | None] = mapped_column(Date)


class Tab(OrgScoped, Base):
    """Per site and member: what their tab owes now, the amounts of the lines no batch has
    claimed yet. Kept by the database as lines are rung and claimed (the triggers bar_tab_ring
    and bar_tab_claim, migration 0044), so that the tab limit and the tab's balance are one row,
    whatever the member's history. Derived, never written by the service (funding/grants.py):
    ``funding ledger verify`` recomputes it from the lines (funding.bar.integrity)."""

    __tablename__ = "bar_tabs"
    __table_args__ = (Index("ix_bar_tabs_member_id", "member_id"),)

    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    owed: Mapped[int] = mapped_column(default=0)


class Ticket(OrgScoped, Base):
    """A walk-in sale: lines rung up for someone who pays on the spot (Stripe Checkout)."""

    __tablename__ = "bar_tickets"
    __table_args__ = (CheckConstraint(one_of("status", TicketStatus), name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    status: Mapped[TicketStatus] = mapped_column(EnumText(TicketStatus, 10), default=TicketStatus.OPEN)
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"), unique=True)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    paid_at: Mapped[dt.datetime | None]


class SaleLine(OrgScoped, Base):
    """One line of the till: a sale (quantity > 0) or the cancellation of one (quantity < 0,
    ``cancels_id`` and a reason). On a member's tab (``member_id``, a ``users`` id) or on a
    walk-in ticket. Name, price and VAT rate are copied from the product at the time."""

    __tablename__ = "bar_sale_lines"
    __table_args__ = (
        UniqueConstraint("site_id", "seq"),
        UniqueConstraint("cancels_id"),
        CheckConstraint(one_of("kind", LineKind), name="kind"),
        CheckConstraint(
            "(kind = 'sale' AND cancels_id IS NULL AND quantity > 0)"
            " OR (kind = 'cancel' AND cancels_id IS NOT NULL AND quantity < 0 AND length(reason) > 0)",
            name="shape",
        ),
        CheckConstraint("(member_id IS NULL) <> (ticket_id IS NULL)", name="one_holder"),
        CheckConstraint("amount = unit_price * quantity", name="amount"),
        CheckConstraint("unit_price > 0", name="unit_price_positive"),
        CheckConstraint("vat_rate IN (55, 100, 200)", name="vat_rate"),
        Index("ix_bar_sale_lines_site_day", "site_id", "day"),
        Index("ix_bar_sale_lines_site_member", "site_id", "member_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    seq: Mapped[int]
    day: Mapped[dt.date] = mapped_column(Date)
    recorded_at: Mapped[dt.datetime]
    kind: Mapped[LineKind] = mapped_column(EnumText(LineKind, 6))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("bar_tickets.id"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("bar_products.id"))
    label: Mapped[str] = mapped_column(String(80))
    category: Mapped[str] = mapped_column(String(40), default="")
    unit_price: Mapped[int]
    quantity: Mapped[int]
    amount: Mapped[int]
    vat_rate: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    cancels_id: Mapped[int | None] = mapped_column(ForeignKey("bar_sale_lines.id"))
    reason: Mapped[str] = mapped_column(String(200), default="")
    recorded_by: Mapped[str] = mapped_column(String(200), default="")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class Batch(OrgScoped, Base):
    """A member's tab at a cut-off: the lines it claimed, billed once through Stripe.

    ready → billed (invoice item on the next subscription invoice, or a PaymentIntent
    under way) → paid; ready/billed → due (no card, card declined, invoice voided: the
    member pays from their area) → paid; ``empty`` when the lines cancel out.
    """

    __tablename__ = "bar_batches"
    __table_args__ = (
        UniqueConstraint("site_id", "member_id", "key"),
        CheckConstraint(one_of("status", BatchStatus), name="status"),
        CheckConstraint(one_of("method", BatchMethod), name="method"),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        Index("ix_bar_batches_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    key: Mapped[str] = mapped_column(String(60))
    amount: Mapped[int] = mapped_column(default=0)
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    line_count: Mapped[int] = mapped_column(default=0)
    status: Mapped[BatchStatus] = mapped_column(EnumText(BatchStatus, 8), default=BatchStatus.READY)
    method: Mapped[BatchMethod | None] = mapped_column(EnumText(BatchMethod, 20))
    stripe_invoice_item_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    stripe_invoice_id: Mapped[str | None] = mapped_column(String(255), index=True)
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    billed_at: Mapped[dt.datetime | None]
    paid_at: Mapped[dt.datetime | None]


class BatchLine(Base):
    """A sale line claimed by a batch: the primary key makes a second claim impossible."""

    __tablename__ = "bar_batch_lines"

    sale_line_id: Mapped[int] = mapped_column(ForeignKey("bar_sale_lines.id"), primary_key=True, autoincrement=False)
    batch_id: Mapped[int] = mapped_column(ForeignKey("bar_batches.id"), index=True)


class TillClosing(OrgScoped, Base):
    """A day, month or fiscal-year closing of a site's till: the period's totals per VAT
    rate, the fiscal-year running total and the perpetual grand total, chained."""

    __tablename__ = "bar_closings"
    __table_args__ = (
        UniqueConstraint("site_id", "kind", "period"),
        CheckConstraint(one_of("kind", TillClosingKind), name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    kind: Mapped[TillClosingKind] = mapped_column(EnumText(TillClosingKind, 5))
    # 2026-12-05, 2026-12-05/2 (the day closed again), 2026-12, 2026. SQLite keeps its first
    # VARCHAR(10): it never holds a VARCHAR to its length (migration 0037).
    period: Mapped[str] = mapped_column(String(16).with_variant(String(10), "sqlite"))
    start_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date] = mapped_column(Date)
    first_seq: Mapped[int | None]
    last_seq: Mapped[int | None]
    line_count: Mapped[int]
    cancel_count: Mapped[int]
    totals: Mapped[str] = mapped_column(Text)  # per currency, per VAT rate: [TTC, HT, TVA]
    by_mode: Mapped[str] = mapped_column(Text)  # per currency: tab / walk-in TTC
    cancellations: Mapped[str] = mapped_column(Text)  # the cancelling lines of the period
    period_total: Mapped[str] = mapped_column(Text)
    fiscal_year_total: Mapped[str] = mapped_column(Text)
    grand_total: Mapped[str] = mapped_column(Text)
    entry_key: Mapped[str | None] = mapped_column(String(200))  # the ledger entry it posted (day closings)
    closed_at: Mapped[dt.datetime]
    closed_by: Mapped[str] = mapped_column(String(200), default="")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class Archive(OrgScoped, Base):
    """A fiscal year of a site's till in a readable JSON document, with its SHA-256 and a
    hash chained to the previous archive. The row is also the log of the archiving."""

    __tablename__ = "bar_archives"
    __table_args__ = (UniqueConstraint("site_id", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    period: Mapped[str] = mapped_column(String(10))
    filename: Mapped[str] = mapped_column(String(120))
    content: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    line_count: Mapped[int]
    created_at: Mapped[dt.datetime]
    created_by: Mapped[str] = mapped_column(String(200), default="")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
