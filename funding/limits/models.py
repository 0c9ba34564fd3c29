"""The counters of the rate limits: one row per action, hashed key and fixed window."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, Index, PrimaryKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from funding.db import Base


class RateCounter(Base):
    """How many times ``action`` was asked for ``key`` (an address, a client IP: stored only as
    a keyed hash) in the window starting at ``window_start``. Old windows are deleted."""

    __tablename__ = "rate_limits"
    __table_args__ = (PrimaryKeyConstraint("action", "key_hash", "window_start"), CheckConstraint("hits > 0", name="hits"),
                      Index("ix_rate_limits_window_start", "window_start"))

    action: Mapped[str] = mapped_column(String(40))
    key_hash: Mapped[str] = mapped_column(String(64))
    window_start: Mapped[dt.datetime]
    hits: Mapped[int]


class LinkRevocation(Base):
    """Links to contributions and tax receipts emailed to an address (``email_hash``, a keyed
    hash) and signed before ``revoked_before`` no longer open. Moved forward, never back."""

    __tablename__ = "link_revocations"
    __table_args__ = (PrimaryKeyConstraint("email_hash"),)

    email_hash: Mapped[str] = mapped_column(String(64))
    revoked_before: Mapped[dt.datetime]
