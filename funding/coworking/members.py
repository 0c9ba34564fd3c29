"""Members: a ``users`` row (role member) plus who they are for the books and on invoices.

A member's Stripe customer is created once (``create_once``, keyed by the member row) and
carries the company's name, SIREN and VAT number as invoice custom fields, so they are
printed on every invoice Stripe issues from then on. In the ledger each member has an
auxiliary account under 411 (``M000042``) in the books of the organisation it pays.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from funding.auth.models import Role, User
from funding.auth.service import AuthError, create_user, grant, is_team, normalise_email
from funding.coworking.models import JoinRequest, JoinStatus, Member
from funding.db import digits, get_held, insert_ignore, must_get, transaction, utcnow
from funding.errors import FundingError
from funding.i18n import gettext as _
from funding.ledger.service import expect_aux_account
from funding.orgs.models import Site
from funding.orgs.service import luhn_ok
from funding.payments.calls import create_once
from funding.stripe_gateway import StripeGateway


class MemberError(FundingError):
    """Refused member data; the message is for a person."""


@dataclass(frozen=True)
class Details:
    name: str
    email: str
    phone: str | None = None
    company_name: str | None = None
    siren: str | None = None
    vat_number: str | None = None
    address: str | None = None  # postal address, printed on invoices (None: left as it is)

    @property
    def is_company(self) -> bool:
        return bool(self.company_name)


def french_vat_key(siren: str) -> int:
    return (12 + 3 * (int(siren) % 97)) % 97


def check_details(*, name: str, email: str, phone: str = "", company_name: str = "", siren: str = "",
                  vat_number: str = "", company_required: bool = False, address: str | None = None) -> Details:
    """Read a join or details form. Raises MemberError with a French message."""
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise MemberError(_("Indiquez votre nom et prénom."))
    try:
        email = normalise_email(email)
    except AuthError as exc:
        raise MemberError(str(exc)) from None
    phone = re.sub(r"[\s.\-]", "", phone or "")
    if phone and not re.fullmatch(r"\+?\d{6,15}", phone):
        raise MemberError(_("Numéro de téléphone invalide."))
    company_name = (company_name or "").strip()
    siren = re.sub(r"\s", "", siren or "")
    vat_number = re.sub(r"[\s.]", "", vat_number or "").upper()
    if len(company_name) > 200:
        raise MemberError(_("Le nom de l'entreprise est trop long (200 caractères au plus)."))
    if company_required and not company_name:
        raise MemberError(_("Cette formule est réservée aux entreprises : indiquez le nom de l'entreprise et son SIREN."))
    if (siren or vat_number) and not company_name:
        raise MemberError(_("Indiquez le nom de l'entreprise qui correspond à ce SIREN."))
    if company_name:
        if not re.fullmatch(r"\d{9}", siren) or not luhn_ok(siren):
            raise MemberError(_("SIREN invalide : 9 chiffres, tels qu'ils figurent sur l'avis de situation INSEE."))
        if vat_number:
            match = re.fullmatch(r"FR(\d{2})(\d{9})", vat_number)
            if not match or match.group(2) != siren or int(match.group(1)) != french_vat_key(siren):
                raise MemberError(_("Numéro de TVA intracommunautaire invalide : FR, une clé de 2 chiffres, puis le SIREN."))
    if address is not None:
        address = "\n".join(line.strip() for line in address.replace("\r", "").split("\n") if line.strip())
        if len(address) > 500 or len(address.splitlines()) > 6:
            raise MemberError(_("Adresse trop longue (6 lignes, 500 caractères au plus)."))
    return Details(name=name, email=email, phone=phone or None, company_name=company_name or None,
                   siren=siren or None, vat_number=vat_number or None, address=address)


async def get_member(session: AsyncSession, member_id: int) -> Member | None:
    return await session.get(Member, member_id)


async def member_for_user(session: AsyncSession, user_id: int) -> Member | None:
    return await session.scalar(select(Member).where(Member.user_id == user_id))


async def member_by_customer(session: AsyncSession, customer_id: str | None) -> Member | None:
    if not customer_id:
        return None
    return await session.scalar(select(Member).where(Member.stripe_customer_id == customer_id))


async def member_from_metadata(session: AsyncSession, metadata: dict | None, customer_id: str | None) -> Member | None:
    """The member a Stripe object belongs to: our id in its metadata, else its customer."""
    raw = str((metadata or {}).get("member_id") or "")
    if digits(raw):
        member = await _held_with_person(session, int(raw))
        if member is not None and (not customer_id or member.stripe_customer_id in (None, customer_id)):
            return member
    member = await member_by_customer(session, customer_id)
    if member is None:
        join = await join_of(session, metadata, customer_id)
        if join is not None:  # a paid join's first event, whichever comes first: its account is made now
            member = await joined_member(session, join.id)
    return member


_WITH_PERSON = (select(Member, User).outerjoin(User, User.id == Member.user_id)  # outer: a wall may hide the person
                .where(Member.id == bindparam("member_id")))


async def _held_with_person(session: AsyncSession, member_id: int) -> Member | None:
    """The member, held for the session's life (:func:`funding.db.get_held`); the first time, read
    together with their person (``users`` row, held too), whom a booking names next in the books."""
    held = session.info.get("held", {})
    if (Member, member_id) in held:
        return await get_held(session, Member, member_id)
    found = (await session.execute(_WITH_PERSON, {"member_id": member_id})).first()
    if found is None:
        return None
    member, user = found
    held = session.info.setdefault("held", {})
    held[(Member, member_id)] = member
    if user is not None:
        held[(User, user.id)] = user
    return member


# --- a join waiting for its payment ------------------------------------------------------------


async def join_of(session: AsyncSession, metadata: dict | None, customer_id: str | None) -> JoinRequest | None:
    """The join request a Stripe object belongs to: our id in its metadata, else its customer."""
    raw = str((metadata or {}).get("join_id") or "")
    if digits(raw):
        join = await session.get(JoinRequest, int(raw))
        if join is not None and (not customer_id or join.stripe_customer_id in (None, customer_id)):
            return join
    if not customer_id:
        return None
    return await session.scalar(select(JoinRequest).where(JoinRequest.stripe_customer_id == customer_id))


def join_details(join: JoinRequest) -> Details:
    return Details(name=join.name, email=join.email, phone=join.phone, company_name=join.company_name, siren=join.siren,
                   vat_number=join.vat_number)


async def open_join(session: AsyncSession, site: Site, plan_id: int, details: Details, *, link_digest: str,
                    locale: str) -> JoinRequest:
    """The join request of an email link, recorded once per link (followed twice: the same row)."""
    await insert_ignore(session, JoinRequest, {
        "org_id": site.org_id, "site_id": site.id, "plan_id": plan_id, "link_digest": link_digest, "email": details.email,
        "name": details.name, "phone": details.phone, "company_name": details.company_name, "siren": details.siren,
        "vat_number": details.vat_number, "locale": locale, "attempts": 0, "status": JoinStatus.OPEN,
        "created_at": utcnow()}, ["link_digest"])
    return (await session.scalars(select(JoinRequest).where(JoinRequest.link_digest == link_digest)
                                  .execution_options(populate_existing=True))).one()


async def joined_member(session: AsyncSession, join_id: int) -> Member:
    """The member a paid join becomes: its account and member record are created now, once
    (the request's row is locked, so two events of one payment make one account). An address
    that got an account meanwhile keeps it: the join's customer is then that member's too."""
    join = await session.get(JoinRequest, join_id, with_for_update=True, populate_existing=True)
    if join is None:
        raise LookupError(join_id)
    if join.member_id is not None:
        return await must_get(session, Member, join.member_id)
    site = await must_get(session, Site, join.site_id)
    member, created = await enrol(session, site, join_details(join))
    if created:
        user = await must_get(session, User, member.user_id)
        user.locale = join.locale
    if member.stripe_customer_id is None:
        member.stripe_customer_id = join.stripe_customer_id
    join.member_id, join.status, join.joined_at = member.id, JoinStatus.JOINED, utcnow()
    await session.flush()
    return member


async def enrol(session: AsyncSession, site: Site, details: Details) -> tuple[Member, bool]:
    """The member for this email, created with its user if new. Returns (member, created):
    ``created`` is False when the address already had an account (its owner must log in).

    An existing member's details are never changed from here: an anonymous form cannot
    rewrite someone's invoices (the member edits them after logging in).
    """
    user = await session.scalar(select(User).where(User.email == details.email))
    created = user is None
    if user is not None:
        if await is_team(session, user.id):
            raise MemberError(_("Cette adresse est celle d'un compte de l'équipe : utilisez une autre adresse pour adhérer."))
        member = await member_for_user(session, user.id)
        if member is not None:
            return member, False
    try:
        if user is None:
            user = await create_user(session, email=details.email, name=details.name, role=Role.MEMBER, org_id=site.org_id)
        else:
            await grant(session, user, Role.MEMBER, org_id=site.org_id, log_out=False)  # joining, not being given a role
        # An account that exists already (the bar's regulars) gets its member record bare: its owner adds
        # the company after logging in.
        member = Member(user_id=user.id, site_id=site.id, org_id=site.org_id, company_name=details.company_name if created
                        else None, siren=details.siren if created else None, vat_number=details.vat_number if created else None,
                        phone=details.phone if created else None)
        session.add(member)
        await session.flush()
    except IntegrityError:  # the same address joining twice at once: the database let one through
        raise MemberError(_("Cette adresse vient d'être enregistrée : réessayez dans un instant.")) from None
    return member, created


async def update_details(session: AsyncSession, member: Member, details: Details) -> None:
    user = await must_get(session, User, member.user_id)
    user.name = details.name
    member.company_name, member.siren, member.vat_number = details.company_name, details.siren, details.vat_number
    member.phone = details.phone
    if details.address is not None:
        member.address = details.address
    member.updated_at = utcnow()
    await session.flush()


def customer_params(member: Member, user: User) -> dict:
    return _customer(Details(name=user.name, email=user.email, phone=member.phone, company_name=member.company_name,
                             siren=member.siren, vat_number=member.vat_number),
                     {"purpose": "coworking", "member_id": str(member.id), "site_id": str(member.site_id),
                      "org_id": str(member.org_id)})


def _customer(details: Details, metadata: dict) -> dict:
    fields = []
    if details.company_name:
        fields.append({"name": "SIREN", "value": details.siren or ""})
        if details.vat_number:
            fields.append({"name": "N° TVA intracommunautaire", "value": details.vat_number})
        fields.append({"name": "Contact", "value": details.name[:140]})
    return {
        "email": details.email,
        "name": (details.company_name or details.name)[:250],
        "phone": details.phone or "",
        "preferred_locales": ["fr"],
        "metadata": metadata,
        "invoice_settings": {"custom_fields": fields or ""},
    }


def _created_params(params: dict) -> dict:
    """What a create sends: Stripe refuses an empty ``phone`` or custom fields list there."""
    if not params["invoice_settings"]["custom_fields"]:
        params.pop("invoice_settings")
    if not params["phone"]:
        params.pop("phone")
    return params


async def ensure_customer(sessions: async_sessionmaker, gw: StripeGateway, member_id: int) -> str:
    """The member's Stripe customer id, created once (the key is derived from the member row)."""
    async with sessions() as session:
        member = await session.get(Member, member_id)
        user = await session.get(User, member.user_id)
    if member.stripe_customer_id:
        return member.stripe_customer_id
    customer = await create_once(sessions, gw, ref=f"coworking-member:{member.id}", resource="customers",
                                 params=_created_params(customer_params(member, user)))
    async with transaction(sessions) as session:
        await session.execute(update(Member).where(Member.id == member.id, Member.stripe_customer_id.is_(None))
                              .values(stripe_customer_id=customer["id"], updated_at=utcnow()))
    return customer["id"]


async def ensure_join_customer(sessions: async_sessionmaker, gw: StripeGateway, join_id: int) -> str:
    """The Stripe customer a join's Checkout charges, created once (the key is derived from the
    join request); it becomes the member's when the payment makes the account."""
    async with sessions() as session:
        join = await must_get(session, JoinRequest, join_id)
    if join.stripe_customer_id:
        return join.stripe_customer_id
    params = _customer(join_details(join), {"purpose": "coworking", "join_id": str(join.id), "site_id": str(join.site_id),
                                            "org_id": str(join.org_id)})
    customer = await create_once(sessions, gw, ref=f"coworking-join:{join.id}", resource="customers",
                                 params=_created_params(params))
    async with transaction(sessions) as session:
        await session.execute(update(JoinRequest).where(JoinRequest.id == join.id, JoinRequest.stripe_customer_id.is_(None))
                              .values(stripe_customer_id=customer["id"]))
    return customer["id"]


async def push_details(gw: StripeGateway, member: Member, user: User) -> None:
    """Send changed details to the member's Stripe customer (future invoices print them)."""
    if member.stripe_customer_id:
        await gw.call("customers", "update", member.stripe_customer_id, params=customer_params(member, user))


async def ensure_aux_account(session: AsyncSession, org_id: int, member: Member, label: str | None = None) -> str:
    """The member's 411 auxiliary account in ``org_id``'s books, asked for: inserted if missing by the
    posting of this transaction that names it, with every other asked for, in one statement
    (funding.ledger.service.expect_aux_account); returns its code."""
    if label is None:
        user = await must_get(session, User, member.user_id)
        label = member.company_name or user.name
    expect_aux_account(session, org_id, member.aux_code, label)
    return member.aux_code


def member_since(member: Member) -> dt.datetime:
    return member.created_at
