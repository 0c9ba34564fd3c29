"""The outbox: every email the service sends is a row first, sent after commit."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from funding.db import Base, EnumText, one_of, utcnow


class EmailStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"  # out of attempts
    UNKNOWN = "unknown"  # left in sending by a crash: a person looks, it is never resent blindly


EMAIL_STATES = tuple(EmailStatus)


class Email(Base):
    __tablename__ = "emails"
    __table_args__ = (
        CheckConstraint(one_of("status", EmailStatus), name="status"),
        Index("ix_emails_status_next", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # One email per purpose: a unique key makes a second enqueue of the same message a no-op.
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    # The organisation whose business the email is about (None: personal, e.g. a login link).
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    to_addr: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    # References to files built when sending (JSON list of {"kind": …}), never the bytes.
    attachments: Mapped[str | None] = mapped_column(Text)
    status: Mapped[EmailStatus] = mapped_column(EnumText(EmailStatus, 10), default=EmailStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None]
