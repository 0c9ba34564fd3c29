"""What the exports domain keeps: the log of every export taken, who receives the
monthly exports, and which monthly sendings were prepared."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from funding.db import Base, EnumText, one_of, utcnow
from funding.scoped import OrgScoped


class ExportFormat(StrEnum):
    FEC = "fec"
    FEC_LATIN9 = "fec-latin9"  # the FEC in ISO 8859-15, characters outside it transliterated
    CSV = "csv"
    BEANCOUNT = "beancount"
    HLEDGER = "hledger"
    TRIAL_BALANCE = "trial-balance"
    GENERAL_LEDGER = "general-ledger"


class Channel(StrEnum):
    """How an export was handed over."""

    WEB = "web"
    CLI = "cli"
    EMAIL = "email"
    LINK = "link"


FORMATS = tuple(ExportFormat)


class ExportLog(OrgScoped, Base):
    """One export taken: by whom, when, of what, and the SHA-256 of the bytes handed over."""

    __tablename__ = "export_logs"
    __table_args__ = (
        Index("ix_export_logs_taken_at", "taken_at"),
        CheckConstraint(one_of("format", ExportFormat), name="format"),
        CheckConstraint(one_of("channel", Channel), name="channel"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Every export is taken of one organisation's books (Scope.org_id), so every row has one;
    # the column stays nullable as migration 0007 created it.
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), nullable=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id"))
    format: Mapped[ExportFormat] = mapped_column(EnumText(ExportFormat, 20))
    start_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date] = mapped_column(Date)
    filename: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int]
    rows: Mapped[int]
    # The period was closed when exported: the same request must give the same bytes.
    closed: Mapped[bool] = mapped_column(default=False)
    taken_by: Mapped[str] = mapped_column(String(254))
    channel: Mapped[Channel] = mapped_column(EnumText(Channel, 10))
    taken_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ExportRecipient(OrgScoped, Base):
    """Someone who receives an organisation's monthly exports by email."""

    __tablename__ = "export_recipients"
    __table_args__ = (UniqueConstraint("org_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    email: Mapped[str] = mapped_column(String(254))
    name: Mapped[str] = mapped_column(String(200), default="")
    formats: Mapped[str] = mapped_column(String(100), default="fec,csv,trial-balance")
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ExportRun(OrgScoped, Base):
    """A month's sending, prepared once per organisation (the worker claims it by inserting)."""

    __tablename__ = "export_runs"
    __table_args__ = (UniqueConstraint("org_id", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    period: Mapped[str] = mapped_column(String(7))
    emails: Mapped[int] = mapped_column(default=0)
    created_by: Mapped[str] = mapped_column(String(254), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
