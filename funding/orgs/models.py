"""Organisations (legal entities that keep books) and their sites (tiers-lieux)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from funding.db import Base, utcnow
from funding.scoped import OrgScoped


class Organisation(Base):
    __tablename__ = "organisations"
    __table_args__ = (
        CheckConstraint("length(siren) = 9", name="siren_length"),
        CheckConstraint("fiscal_year_start_month BETWEEN 1 AND 12", name="fiscal_year_start"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    siren: Mapped[str] = mapped_column(String(9), unique=True)
    rna: Mapped[str | None] = mapped_column(String(10))
    vat_number: Mapped[str | None] = mapped_column(String(20))
    vat_liable: Mapped[bool] = mapped_column(default=False)
    general_interest: Mapped[bool] = mapped_column(default=False)
    address: Mapped[str] = mapped_column(Text, default="")
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    fiscal_year_start_month: Mapped[int] = mapped_column(default=1)
    # The organisation whose books hold the Stripe account's money (fees, payouts…).
    uses_stripe: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    sites: Mapped[list[Site]] = relationship(back_populates="organisation", order_by="Site.id")


class Site(OrgScoped, Base):
    __tablename__ = "sites"
    __table_args__ = (UniqueConstraint("id", "org_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    slug: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    town: Mapped[str] = mapped_column(String(120), default="")
    is_central: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    organisation: Mapped[Organisation] = relationship(back_populates="sites")
