"""Ledger tables: chart of accounts, journals, entries, postings, chain heads, closings.

Integrity lives in the database as well as in the code: composite foreign keys tie a
posting to an account *of the same organisation*; triggers (see the first migration)
refuse unbalanced validations, gaps in numbering, broken ``prev_hash`` links, posts into
closed periods, and any UPDATE or DELETE of a validated entry, its postings or a closing.
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
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from funding.db import Base, EnumText, one_of, utcnow
from funding.scoped import OrgScoped


class FundingSource(StrEnum):
    """Where the money of an entry comes from (ACCOUNTING.md §1); ``internal`` moves it between our own accounts."""

    PUBLIC = "public"
    PRIVATE = "private"
    CROWDFUNDING = "crowdfunding"
    SELF = "self"
    INTERNAL = "internal"


class ClosingKind(StrEnum):
    MONTH = "month"
    YEAR = "year"


class SealKind(StrEnum):
    """Which closing a seal anchors."""

    MONTH = "month"
    BAR_DAY = "bar-day"
    BAR_MONTH = "bar-month"
    BAR_YEAR = "bar-year"
    YEAR = "year"


class GrantNature(StrEnum):
    """How a grant is booked, chosen when it is recorded (funding.ledger.yearend books its year-ends)."""

    OPERATING = "operating"  # for the year: 74x at notification
    MULTI_YEAR = "multi-year"  # spread evenly over ``years`` fiscal years: later years' part in 487
    RESTRICTED = "restricted"  # subvention affectée: the part unspent at a year-end goes to fonds dédiés (194)
    INVESTMENT = "investment"  # 131 at notification, released to 777 (via 139) as what it funded depreciates


FUNDING_SOURCES = tuple(FundingSource)
GENESIS_HASH = "0" * 64


class Account(OrgScoped, Base):
    __tablename__ = "accounts"
    __table_args__ = (
        UniqueConstraint("org_id", "number"),
        CheckConstraint("length(number) >= 3", name="number_length"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    number: Mapped[str] = mapped_column(String(20))
    label: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AuxAccount(OrgScoped, Base):
    """An auxiliary (third-party) account: a member under 411, a funder under 441…"""

    __tablename__ = "aux_accounts"
    __table_args__ = (UniqueConstraint("org_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    code: Mapped[str] = mapped_column(String(30))
    label: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Journal(Base):
    __tablename__ = "journals"

    code: Mapped[str] = mapped_column(String(4), primary_key=True)
    label: Mapped[str] = mapped_column(String(100))


class LedgerHead(OrgScoped, Base):
    """Per organisation: the last number and hash of the chain, and the closed boundary.

    Maintained by database triggers when an entry is validated or a period closed.
    """

    __tablename__ = "ledger_heads"

    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    last_number: Mapped[int] = mapped_column(default=0)
    last_hash: Mapped[str] = mapped_column(String(64), default=GENESIS_HASH)
    closed_through: Mapped[dt.date | None] = mapped_column(Date)
    last_closing_hash: Mapped[str] = mapped_column(String(64), default=GENESIS_HASH)


class Grant(OrgScoped, Base):
    """A public grant as notified by its funder (open-data fields of ACCOUNTING.md §7)."""

    __tablename__ = "grants"
    __table_args__ = (
        UniqueConstraint("org_id", "reference"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    funder_name: Mapped[str] = mapped_column(String(200))
    funder_siret: Mapped[str | None] = mapped_column(String(14))
    reference: Mapped[str] = mapped_column(String(100))
    convention_date: Mapped[dt.date] = mapped_column(Date)
    object: Mapped[str] = mapped_column(String(256))
    amount: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    conditions: Mapped[str] = mapped_column(String(20), default="unique")
    payment_dates: Mapped[str] = mapped_column(String(60), default="")
    scheme: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    nature: Mapped[GrantNature] = mapped_column(EnumText(GrantNature, 20), default=GrantNature.OPERATING)
    years: Mapped[int] = mapped_column(SmallInteger, default=1)  # fiscal years it covers (multi-year), from its convention's


class FixedAsset(OrgScoped, Base):
    """An entry of the fixed-asset register: bought once (its purchase entry debits ``account``),
    depreciated straight-line over ``useful_life`` years into the matching 28x account by the
    year-end entries (funding.ledger.yearend), prorata temporis in days in its first year.
    ``grant_id``: the investment grant that funded it, released to 777 in step."""

    __tablename__ = "fixed_assets"
    __table_args__ = (
        UniqueConstraint("org_id", "source_key"),
        ForeignKeyConstraint(["site_id", "org_id"], ["sites.id", "sites.org_id"]),
        CheckConstraint("cost > 0", name="cost_positive"),
        CheckConstraint("useful_life BETWEEN 1 AND 50", name="useful_life"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    site_id: Mapped[int]
    label: Mapped[str] = mapped_column(String(200))
    account_number: Mapped[str] = mapped_column(String(20))
    acquired_on: Mapped[dt.date] = mapped_column(Date)
    cost: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    useful_life: Mapped[int] = mapped_column(SmallInteger)
    grant_id: Mapped[int | None] = mapped_column(ForeignKey("grants.id"), index=True)
    source_key: Mapped[str] = mapped_column(String(200))  # the purchase entry's
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


ENTRY_KEYS = ("fk_entries_journal_code_journals", "fk_entries_org_id_organisations", "fk_entries_site_id_org_id_sites")


class Entry(OrgScoped, Base):
    __tablename__ = "entries"
    __table_args__ = (
        UniqueConstraint("org_id", "number"),
        UniqueConstraint("org_id", "source_key"),
        UniqueConstraint("id", "org_id"),
        UniqueConstraint("reverses_id"),
        # Deferrable (immediate unless a posting batch defers them, funding.ledger.service): an
        # entry is inserted as a draft, then numbered in the same transaction, and an immediate
        # key is checked again at that UPDATE; deferred to the batch's end, it is checked once.
        ForeignKeyConstraint(["site_id", "org_id"], ["sites.id", "sites.org_id"], deferrable=True, initially="IMMEDIATE"),
        CheckConstraint(one_of("funding_source", FundingSource), name="funding_source"),
        CheckConstraint(
            "(number IS NULL AND hash IS NULL AND validated_at IS NULL)"
            " OR (number IS NOT NULL AND hash IS NOT NULL AND prev_hash IS NOT NULL AND validated_at IS NOT NULL)",
            name="validated_fields",
        ),
        Index("ix_entries_org_date", "org_id", "entry_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", deferrable=True, initially="IMMEDIATE"))
    site_id: Mapped[int]
    journal_code: Mapped[str] = mapped_column(ForeignKey("journals.code", deferrable=True, initially="IMMEDIATE"))
    number: Mapped[int | None]
    entry_date: Mapped[dt.date] = mapped_column(Date)
    label: Mapped[str] = mapped_column(String(200))
    piece_ref: Mapped[str] = mapped_column(String(100))
    piece_date: Mapped[dt.date] = mapped_column(Date)
    funding_source: Mapped[FundingSource] = mapped_column(EnumText(FundingSource, 16))
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("entries.id"))
    source_key: Mapped[str | None] = mapped_column(String(200))
    grant_id: Mapped[int | None] = mapped_column(ForeignKey("grants.id"), index=True)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    validated_at: Mapped[dt.datetime | None]
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))


class Posting(OrgScoped, Base):
    """One line of an entry. ``amount`` is signed minor units: debit > 0, credit < 0."""

    __tablename__ = "postings"
    __table_args__ = (
        UniqueConstraint("entry_id", "line_no"),
        ForeignKeyConstraint(["entry_id", "org_id"], ["entries.id", "entries.org_id"]),
        ForeignKeyConstraint(["org_id", "account_number"], ["accounts.org_id", "accounts.number"]),
        ForeignKeyConstraint(["org_id", "aux_code"], ["aux_accounts.org_id", "aux_accounts.code"]),
        CheckConstraint("amount <> 0", name="amount_nonzero"),
        CheckConstraint("length(currency) = 3", name="currency_code"),
        Index("ix_postings_org_account", "org_id", "account_number"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int]
    org_id: Mapped[int]
    line_no: Mapped[int] = mapped_column(SmallInteger)
    account_number: Mapped[str] = mapped_column(String(20))
    aux_code: Mapped[str | None] = mapped_column(String(30))
    amount: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    label: Mapped[str | None] = mapped_column(String(200))


class Closing(OrgScoped, Base):
    """A closed month: its totals, the running totals, chained to the previous closing."""

    __tablename__ = "closings"
    __table_args__ = (UniqueConstraint("org_id", "kind", "period"), CheckConstraint(one_of("kind", ClosingKind), name="kind"))

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    kind: Mapped[ClosingKind] = mapped_column(EnumText(ClosingKind, 10), default=ClosingKind.MONTH)
    period: Mapped[str] = mapped_column(String(7))
    start_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date] = mapped_column(Date)
    first_number: Mapped[int | None]
    last_number: Mapped[int | None]
    entry_count: Mapped[int]
    totals: Mapped[str] = mapped_column(Text)
    period_total: Mapped[str] = mapped_column(Text)
    fiscal_year_total: Mapped[str] = mapped_column(Text)
    grand_total: Mapped[str] = mapped_column(Text)
    closed_at: Mapped[dt.datetime]
    closed_by: Mapped[str] = mapped_column(String(200), default="")
    # What the period's exports print beside codes (accounts, auxiliaries, journals, sites,
    # grants, the organisation), frozen at closing: a closed period exports identically even
    # after a rename. JSON, hashed into the closing (format 2); NULL for closings made before.
    labels: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class Seal(OrgScoped, Base):
    """A closing's anchor outside the database: the organisation's chain heads at that moment
    (ledger entries, ledger closings, and for a bar closing its till's lines, closings and
    archives), how many rows its append-only tables held, chained to the previous seal and
    signed with a key the database never holds. Published (``/open-data/ledger-seals``) and
    emailed to the accountants, so copies exist that the database's owner cannot rewrite."""

    __tablename__ = "ledger_seals"
    __table_args__ = (UniqueConstraint("org_id", "seq"), UniqueConstraint("org_id", "prev_hash"),
                      CheckConstraint(one_of("kind", SealKind), name="kind"))

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    seq: Mapped[int]
    kind: Mapped[SealKind] = mapped_column(EnumText(SealKind, 12))
    period: Mapped[str] = mapped_column(String(10))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id"))
    entry_number: Mapped[int]
    entry_hash: Mapped[str] = mapped_column(String(64))
    closing_hash: Mapped[str] = mapped_column(String(64))
    bar_seq: Mapped[int | None]
    bar_hash: Mapped[str | None] = mapped_column(String(64))
    bar_closing_hash: Mapped[str | None] = mapped_column(String(64))
    bar_archive_hash: Mapped[str | None] = mapped_column(String(64))
    counts: Mapped[str] = mapped_column(Text)
    sealed_at: Mapped[dt.datetime]
    key_id: Mapped[str] = mapped_column(String(16))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(100))


class GrantBudgetLine(OrgScoped, Base):
    """One line of a granted action's budget (the *prévisionnel* of cerfa 15059): a category of
    the form — the first two digits of the accounts it covers (60 achats … 68 dotations,
    86 emplois des contributions en nature; 70 ventes … 74 subventions, 75 dons et
    cotisations, 87 contributions en nature) — a label (for 74, the funder) and an amount.
    Kept beside the grant, never on its row; a budget set again replaces the grant's lines."""

    __tablename__ = "grant_budget_lines"
    __table_args__ = (
        UniqueConstraint("grant_id", "category", "label"),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        CheckConstraint("category IN ('60', '61', '62', '63', '64', '65', '66', '67', '68', '69', '86', "
                        "'70', '71', '72', '73', '74', '75', '76', '77', '78', '79', '87')", name="category"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id"), index=True)
    category: Mapped[str] = mapped_column(String(2))
    label: Mapped[str] = mapped_column(String(200), default="")
    amount: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    created_by: Mapped[str] = mapped_column(String(254), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
