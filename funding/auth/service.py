"""Magic-link login: short-lived, single use, signed, and no account enumeration."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Awaitable, Callable

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from funding.auth.models import ROLES, TEAM, LoginToken, Membership, Role, User
from funding.db import rowcount, utcnow
from funding.emails import InvalidEmail, check_email
from funding.errors import FundingError
from funding.i18n import get_locale
from funding.i18n import gettext as _
from funding.mail.compose import render
from funding.mail.service import enqueue
from funding.scoping import THROUGH_THE_WALL
from funding.security import TokenError, sign, unsign
from funding.settings import Settings

PURPOSE = "login"

# People a domain knows without an account (a backer, a donor): ``async fn(session, email)``
# gives (their name, the page they land on) or None. Registered by those domains at start; a
# login link asked for such an address makes them an account with no role, for their own space.
ACCOUNT_SOURCES: list[Callable[[AsyncSession, str], Awaitable[tuple[str, str] | None]]] = []


class AuthError(FundingError):
    pass


def normalise_email(value: str) -> str:
    """One valid address (funding.emails.check_email), in lower case; else ``AuthError``."""
    try:
        return check_email(value)
    except InvalidEmail as exc:
        raise AuthError(str(exc)) from None


async def create_user(session: AsyncSession, *, email: str, name: str, role: str | None = None,
                      org_id: int | None = None, network: bool = False, locale: str = "fr", granted_by: str = "") -> User:
    """A new person; with ``role``, their first membership (in ``org_id``, or with ``network``
    in every organisation)."""
    email = normalise_email(email)
    if not (name or "").strip():
        raise AuthError("nom manquant")
    if await session.scalar(select(User.id).where(User.email == email).execution_options(**THROUGH_THE_WALL)):
        raise AuthError(f"un compte existe déjà pour {email}")
    user = User(email=email, name=name.strip(), locale=locale)
    session.add(user)
    await session.flush()
    if role is not None:  # a new person has no session to end
        await grant(session, user, role, org_id=org_id, network=network, granted_by=granted_by, log_out=False)
    return user


async def end_sessions(session: AsyncSession, user_id: int) -> None:
    """Log the person out everywhere: every session cookie issued to them until now stops
    working (web.load_user compares its generation with this one)."""
    await session.execute(update(User).where(User.id == user_id)
                          .values(session_generation=User.session_generation + 1)
                          .execution_options(synchronize_session=False, **THROUGH_THE_WALL))


async def grant(session: AsyncSession, user: User, role: str, *, org_id: int | None, network: bool = False,
                granted_by: str = "", log_out: bool = True) -> bool:
    """Give ``user`` a role in an organisation (or, ``network=True``, in all of them). True if new.
    A role given ends the person's sessions (they log in again under it), unless ``log_out``
    is False: a role someone takes for themselves by joining (an anonymous form must not be
    able to log a person out)."""
    if role not in ROLES:
        raise AuthError(f"rôle inconnu : {role} ({', '.join(ROLES)})")
    if network == (org_id is not None):
        raise AuthError("un rôle se donne dans une organisation (--org SIREN) ou pour tout le réseau (--network)")
    if network and role == Role.MEMBER:
        raise AuthError("on est membre d'une organisation, pas du réseau : précisez --org SIREN")
    exists = await session.scalar(select(Membership.id).where(
        Membership.user_id == user.id, Membership.role == role,
        Membership.org_id.is_(None) if org_id is None else Membership.org_id == org_id))
    if exists:
        return False
    session.add(Membership(user_id=user.id, org_id=org_id, role=str(role), granted_at=utcnow(), granted_by=granted_by[:254]))
    await session.flush()
    if log_out:
        await end_sessions(session, user.id)
    return True


async def revoke(session: AsyncSession, user: User, role: str, *, org_id: int | None) -> bool:
    from sqlalchemy import delete

    result = await session.execute(delete(Membership).where(
        Membership.user_id == user.id, Membership.role == role,
        Membership.org_id.is_(None) if org_id is None else Membership.org_id == org_id))
    if not rowcount(result):
        return False
    await end_sessions(session, user.id)  # a role taken away: every session of the person ends
    return True


async def grants_of(session: AsyncSession, user_id: int) -> frozenset[tuple[int | None, str]]:
    rows = await session.execute(select(Membership.org_id, Membership.role).where(Membership.user_id == user_id))
    return frozenset((org_id, role) for org_id, role in rows)


async def is_team(session: AsyncSession, user_id: int) -> bool:
    """Does the person hold a role of the team (admin, staff, accountant) anywhere?"""
    return bool(await session.scalar(select(Membership.id).where(Membership.user_id == user_id,
                                                                 Membership.role.in_(TEAM)).limit(1)))


async def is_member_of(session: AsyncSession, user_id: int, org_id: int) -> bool:
    return bool(await session.scalar(select(Membership.id).where(
        Membership.user_id == user_id, Membership.role == Role.MEMBER, Membership.org_id == org_id).limit(1)))


async def issue_link(session: AsyncSession, user: User, settings: Settings, *, next_path: str = "/") -> str:
    token_id = secrets.token_urlsafe(24)
    now = utcnow()
    session.add(LoginToken(id=token_id, user_id=user.id, created_at=now,
                           expires_at=now + dt.timedelta(seconds=settings.login_link_max_age)))
    await session.flush()
    signed = sign(settings.secret_key, PURPOSE, {"t": token_id, "n": safe_next(next_path)})
    return f"{settings.base_url}/login/{signed}"


async def request_login(session: AsyncSession, email: str, settings: Settings, *, next_path: str = "/") -> None:
    """Email a login link if the address belongs to an active account; silent otherwise."""
    email = normalise_email(email)
    user = await session.scalar(select(User).where(func.lower(User.email) == email))
    if user is not None and not user.active:
        return
    known = None
    if user is None or (next_path == "/" and not await is_team(session, user.id)):
        for source in ACCOUNT_SOURCES:
            known = await source(session, email)
            if known is not None:
                break
    if user is None:
        if known is None:
            return
        # The account a backer's first login makes speaks the language they asked in (the
        # request's, set by the caller): else an English backer reads French from then on.
        user = User(email=email, name=known[0][:200], locale=get_locale(), created_at=utcnow())
        session.add(user)
        await session.flush()
    if known is not None and next_path == "/":
        next_path = known[1]
    link = await issue_link(session, user, settings, next_path=next_path)
    await enqueue(
        session,
        to=user.email,
        user_id=user.id,
        dedupe_key=f"login:{link.rsplit('/', 1)[-1][:120]}",
        **render("login_link", user.locale, name=user.name, minutes=settings.login_link_max_age // 60, link=link),
    )


def read_link(token: str, settings: Settings) -> dict:
    try:
        data = unsign(settings.secret_key, PURPOSE, token, max_age=settings.login_link_max_age)
    except TokenError as exc:
        raise AuthError(_("Ce lien de connexion a expiré.") if str(exc) == "expired" else _("Ce lien de connexion est invalide.")) from None
    if not isinstance(data, dict) or not isinstance(data.get("t"), str):
        raise AuthError(_("Ce lien de connexion est invalide."))
    return data


async def consume_link(session: AsyncSession, token: str, settings: Settings) -> tuple[User, str]:
    """Use a link once. A second use, an expired or an altered link is refused."""
    data = read_link(token, settings)
    now = utcnow()
    result = await session.execute(
        update(LoginToken)
        .where(LoginToken.id == data["t"], LoginToken.used_at.is_(None), LoginToken.expires_at > now)
        .values(used_at=now)
        .returning(LoginToken.user_id)
    )
    user_id = result.scalar_one_or_none()
    if user_id is None:
        used = await session.scalar(select(LoginToken.used_at).where(LoginToken.id == data["t"]))
        raise AuthError(_("Ce lien de connexion a déjà été utilisé : demandez-en un nouveau.") if used is not None
                        else _("Ce lien de connexion a expiré : demandez-en un nouveau."))
    user = await session.get(User, user_id)
    if user is None or not user.active:
        raise AuthError(_("Ce compte est désactivé."))
    return user, safe_next(data.get("n") or "/")


def safe_next(path: str) -> str:
    """Only local paths: never redirect to another site after login."""
    if not isinstance(path, str) or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path
