"""People who log in, the roles they hold in each organisation, and their single-use login links."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from funding.db import Base, EnumText, one_of, utcnow


class Role(StrEnum):
    ADMIN = "admin"
    STAFF = "staff"
    ACCOUNTANT = "accountant"
    MEMBER = "member"


ROLES = tuple(Role)
STAFF = (Role.ADMIN, Role.STAFF)
BOOKS = (Role.ADMIN, Role.STAFF, Role.ACCOUNTANT)
EXPORTERS = (Role.ADMIN, Role.ACCOUNTANT)
TEAM = BOOKS


class User(Base):
    """A person. What they may do is in their memberships, never on the person."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    locale: Mapped[str] = mapped_column(String(5), default="fr")
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Written into the session cookie at login; moving it on ends every session of the person
    # (funding.auth.service.end_sessions).
    session_generation: Mapped[int] = mapped_column(default=0, server_default=text("0"))


class Membership(Base):
    """A role a person holds in an organisation; ``org_id`` NULL is the network (the
    federation): that role in every organisation, granted explicitly."""

    __tablename__ = "memberships"
    __table_args__ = (
        UniqueConstraint("user_id", "org_id", "role"),
        # NULLs are distinct in a unique constraint: one network grant per role, enforced apart.
        Index("uq_memberships_network", "user_id", "role", unique=True, sqlite_where=text("org_id IS NULL"),
              postgresql_where=text("org_id IS NULL")),
        CheckConstraint(one_of("role", Role), name="role"),
        CheckConstraint("org_id IS NOT NULL OR role <> 'member'", name="member_of_an_organisation"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    role: Mapped[Role] = mapped_column(EnumText(Role, 20))
    granted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    granted_by: Mapped[str] = mapped_column(String(254), default="")


class LoginToken(Base):
    """The server-side half of a magic link: it can be consumed once, before it expires."""

    __tablename__ = "login_tokens"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]
