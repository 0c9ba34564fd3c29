"""The till's rules: ring up a sale line, cancel one, tabs and their limit, walk-in tickets.

Every line is written at once, under the site's chain head (``FOR UPDATE``): lines of a
site are numbered and chained one after the other, and the tab limit is checked against
a balance no concurrent sale can change meanwhile. Services flush; the caller commits.

The business day of a line is today in Paris, or the day after the last closed day when
today is already closed (a sale rung after the evening closing opens the next day).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import cast

from sqlalchemy import and_, case, exists, func, insert, literal, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from funding.auth.models import Membership, Role, User
from funding.bar.canonical import line_hash
from funding.bar.models import GENESIS_HASH, BatchLine, LineKind, Product, SaleLine, Tab, Ticket, TicketStatus, TillHead
from funding.clock import PARIS
from funding.db import dialect_insert, dialect_of, digits, utcnow
from funding.errors import FundingError
from funding.i18n import gettext as _
from funding.i18n import money
from funding.orgs.models import Site
from funding.scoping import OrgScope
from funding.textfold import fold, folded

MAX_QUANTITY = 99


class BarError(FundingError):
    """A refused till operation; the message is for the person at the till."""


def local_today(now: dt.datetime | None = None) -> dt.date:
    moment = (now or utcnow()).replace(tzinfo=dt.UTC)
    return moment.astimezone(PARIS).date()


def business_day(head: TillHead, now: dt.datetime | None = None) -> dt.date:
    """The day a line rung now belongs to: today in Paris, even when today was closed already (a
    closing before midnight covers the lines up to it; the later ones get a closing of their own,
    funding.bar.closings). Only a clock gone back files onto the last closed day."""
    today = local_today(now)
    if head.closed_through is not None and today < head.closed_through:
        return head.closed_through
    return today


def _insert(session: AsyncSession):
    return dialect_insert(dialect_of(session))


async def lock_head(session: AsyncSession, site: Site) -> TillHead:
    """The site's chain head, locked for this transaction (created on first use)."""
    locked = select(TillHead).where(TillHead.site_id == site.id).with_for_update().execution_options(populate_existing=True)
    head = (await session.execute(locked)).scalar_one_or_none()
    if head is None:
        stmt = _insert(session)(TillHead).values(site_id=site.id, org_id=site.org_id, last_seq=0, last_hash=GENESIS_HASH,
                                                  last_closing_hash=GENESIS_HASH, last_archive_hash=GENESIS_HASH)
        await session.execute(stmt.on_conflict_do_nothing(index_elements=["site_id"]))
        head = (await session.execute(locked)).scalar_one()
    return head


def open_lines(site_id: int, member_id: int):
    """The member's lines at this site that no batch has claimed yet: their tab."""
    claimed = exists().where(BatchLine.sale_line_id == SaleLine.id)
    return and_(SaleLine.site_id == site_id, SaleLine.member_id == member_id, ~claimed)


async def owed_in_org(session: AsyncSession, org_id: int, member_id: int) -> int:
    """What the member owes at the organisation's sites: their tabs' rows (one per site), which
    the database keeps as lines are rung and claimed (bar_tabs, migration 0044)."""
    owed = select(func.coalesce(func.sum(Tab.owed), 0)).where(Tab.org_id == org_id, Tab.member_id == member_id)
    return int((await session.execute(owed)).scalar_one())


async def tab_balance(session: AsyncSession, site_id: int, member_id: int) -> int:
    owed = await session.scalar(select(Tab.owed).where(Tab.site_id == site_id, Tab.member_id == member_id))
    return int(owed or 0)


_COLUMNS = [c for c in SaleLine.__table__.columns.keys() if c != "id"]  # noqa: SIM118  (ordered)


async def _write(session: AsyncSession, head: TillHead, line: SaleLine, cancels_seq: int | None) -> SaleLine:
    """Insert the line as the head's next link (the head locked by this transaction)."""
    line.seq, line.prev_hash = head.last_seq + 1, head.last_hash
    line.hash = line_hash(line, cancels_seq)
    columns = SaleLine.__table__.columns
    row = select(*[literal(getattr(line, name), columns[name].type) for name in _COLUMNS])
    stmt = insert(SaleLine).from_select(_COLUMNS, row).returning(SaleLine.id)
    try:
        # A plain INSERT (not a unit-of-work flush): one statement, the line is never loaded back.
        line.id = (await session.execute(stmt)).scalar_one()
    except IntegrityError as exc:
        raise BarError(_explain(exc)) from exc
    # The database trigger advanced the head; keep the identity map in step without an UPDATE.
    set_committed_value(head, "last_seq", line.seq)
    set_committed_value(head, "last_hash", line.hash)
    return line


def _explain(exc: IntegrityError) -> str:
    text = str(exc.orig) if exc.orig is not None else str(exc)
    if "cancels_id" in text:
        return _("Cette ligne est déjà annulée.")
    for part in text.splitlines():
        if "bar:" in part:
            return part[part.index("bar:"):].strip()
    return _("Vente refusée par la base de données.")


def parse_quantity(raw) -> int:
    text = str(raw if raw is not None else "1").strip() or "1"
    try:
        quantity = int(text)
    except ValueError:
        raise BarError(_("Quantité invalide : %(value)s (un nombre entier).", value=text)) from None
    if quantity < 0:
        raise BarError(_("Quantité négative refusée : pour corriger une vente, annulez sa ligne en indiquant le motif."))
    if quantity == 0:
        raise BarError(_("Quantité nulle : rien à enregistrer."))
    if quantity > MAX_QUANTITY:
        raise BarError(_("Quantité trop grande : %(max)s au plus par ligne.", max=MAX_QUANTITY))
    return quantity


async def sellable(session: AsyncSession, site: Site, product_id) -> Product:
    product = await session.get(Product, int(product_id)) if digits(str(product_id or "")) else None
    if product is None or product.site_id != site.id:
        raise unknown_product(site.name, product_id)
    if not product.active:
        raise inactive_product(product.name)
    return product


# The till's refusals, worded once for both ways of ringing up (ring_up, and bar_ring_up on PostgreSQL).
def unknown_product(site_name: str, product_id) -> BarError:
    return BarError(_("Produit inconnu à %(site)s : %(value)s.", site=site_name, value=str(product_id or "(vide)")[:40]))


def inactive_product(name: str) -> BarError:
    return BarError(_("« %(name)s » n'est plus en vente (produit désactivé).", name=name))


def unknown_member() -> BarError:
    return BarError(_("Membre inconnu : choisissez un membre dans la recherche."))


def over_limit(name: str, owed: int, amount: int, limit: int, currency: str) -> BarError:
    return BarError(_(
        "Plafond d'ardoise atteint pour %(name)s : %(balance)s déjà dus, cette vente (%(amount)s) dépasserait "
        "le plafond de %(limit)s. Faites payer par carte en vente comptoir, ou soldez l'ardoise.",
        name=name, balance=money(owed, currency), amount=money(amount, currency), limit=money(limit, currency)))


async def tab_holder(session: AsyncSession, site: Site, member_id, *, lock: bool = False) -> User:
    """A member of the site's organisation, who may run a tab there; one query. With ``lock``, the
    member's row is locked for the transaction (PostgreSQL): the tab limit is the member's across
    the organisation's sites, and each site's head serialises its own lines only."""
    if not digits(str(member_id or "")):
        raise unknown_member()
    member = exists().where(Membership.user_id == User.id, Membership.role == Role.MEMBER, Membership.org_id == site.org_id)
    query = select(User).where(User.id == int(member_id), User.active, member)
    if lock:
        query = query.with_for_update(of=User)
    user = (await session.execute(query)).scalar_one_or_none()
    if user is None:
        raise unknown_member()
    return user


@dataclass(frozen=True)
class Rung:
    line: SaleLine
    balance: int | None  # the member's tab after this line, at all the organisation's sites (None for a walk-in)


async def ring_up(session: AsyncSession, site: Site, *, product_id, quantity=1, member_id=None, ticket_id=None,
                  limit: int, recorded_by: str = "", now: dt.datetime | None = None) -> Rung:
    """Record one sale line on a member's tab or a walk-in ticket."""
    quantity = parse_quantity(quantity)
    product = await sellable(session, site, product_id)
    member: User | None = None
    ticket: Ticket | None = None
    if member_id not in (None, ""):
        # The member's row is locked before the site's head, as every sale does (never the other
        # way round: no deadlock), and outside the head's critical section, which other tills wait on.
        member = await tab_holder(session, site, member_id, lock=True)
    elif ticket_id not in (None, ""):
        ticket = await session.get(Ticket, int(ticket_id)) if digits(str(ticket_id)) else None
        if ticket is None or ticket.site_id != site.id:
            raise BarError(_("Vente comptoir inconnue."))
    else:
        raise BarError(_("Choisissez un membre, ou ouvrez une vente comptoir."))
    amount = product.price * quantity
    owed = 0
    if member is not None:
        # The limit is the member's across the organisation's sites. Their row is locked above, and every line
        # that adds to their tab locks it first: what they owe can only go down until we commit (a cancellation,
        # a batch claiming lines), so it is read and checked here, before the site's head, not under it.
        owed = await owed_in_org(session, site.org_id, member.id)
        if owed + amount > limit:
            raise over_limit(member.name, owed, amount, limit, product.currency)
    # The critical section other tills wait on: the head's row, the line's INSERT (chained by the trigger), the commit.
    head = await lock_head(session, site)
    if ticket is not None:  # locked after the head, as a cancellation does (one order: no deadlock)
        await session.refresh(ticket, with_for_update=True)
        if ticket.status != TicketStatus.OPEN:
            raise BarError(_("Cette vente comptoir est close : ouvrez-en une nouvelle."))
        if ticket.payment_id is not None:
            raise BarError(_("Le paiement de cette vente est en cours : ouvrez une nouvelle vente pour d'autres produits."))
    now = now or utcnow()
    line = SaleLine(site_id=site.id, org_id=site.org_id, day=business_day(head, now), recorded_at=now, kind=LineKind.SALE,
                    member_id=member.id if member else None, ticket_id=ticket.id if ticket else None,
                    product_id=product.id, label=product.name, category=product.category, unit_price=product.price,
                    quantity=quantity, amount=amount, vat_rate=product.vat_rate, currency=product.currency,
                    cancels_id=None, reason="", recorded_by=recorded_by[:200])
    line = await _write(session, head, line, None)
    return Rung(line, owed + amount if member is not None else None)


# A tap on a member's tab in one statement (PostgreSQL): what ring_up does, in the database
# function bar_ring_up (migrations/sql/templates/bar_ring_up.sql, installed as v2 by migration 0044),
# called outside any transaction. The site's head is then locked for one statement and its commit,
# where ring_up holds it across three round trips and the web process's turns between them; and the
# web process spends one statement on a tap instead of eight ORM ones (issue 19: 20 tills at one site).
RING_UP = text("SELECT * FROM bar_ring_up(:orgs, :by, :slug, :product, :member, :quantity, :limit, :now, :today)")


async def ring_up_at_once(conn: AsyncConnection, scope: OrgScope, *, slug: str, product_id: int, member_id: int,
                          quantity: int, limit: int, recorded_by: str, recorded_at: dt.datetime | None = None) -> Rung | None:
    """Ring up ``quantity`` × product on a member's tab at the site ``slug``, seen through
    ``scope`` (the request's, funding.web.require), on ``conn`` in autocommit. The Rung, a
    BarError for what the till refuses, or None where ring_up must answer: no such site in the
    scope (its 404), or the site's first line (ring_up makes its head)."""
    now = recorded_at or utcnow()
    params = {"orgs": None if scope.orgs is None else sorted(scope.orgs), "by": recorded_by[:200], "slug": slug,
              "product": product_id, "member": member_id, "quantity": quantity, "limit": limit, "now": now,
              "today": local_today(now)}
    try:
        row = (await conn.execute(RING_UP, params)).one()
    except IntegrityError as exc:
        raise BarError(_explain(exc)) from exc
    outcome = row.o_outcome
    if outcome == "elsewhere":
        return None
    if outcome == "product":
        raise unknown_product(row.o_site_name, product_id)
    if outcome == "inactive":
        raise inactive_product(row.o_label)
    if outcome == "member":
        raise unknown_member()
    if outcome == "limit":
        raise over_limit(row.o_name, int(row.o_owed), int(row.o_amount), limit, row.o_currency)
    if outcome != "ok":
        raise ValueError(f"bar_ring_up answered {outcome!r}")
    line = SaleLine(id=row.o_line_id, seq=row.o_seq, kind=LineKind.SALE, member_id=member_id, ticket_id=None,
                    product_id=product_id, label=row.o_label, quantity=quantity, amount=int(row.o_amount),
                    currency=row.o_currency, recorded_at=now)
    return Rung(line, int(row.o_owed) + int(row.o_amount))


async def cancel(session: AsyncSession, site: Site, *, line_id, reason: str, recorded_by: str = "",
                 now: dt.datetime | None = None) -> SaleLine:
    """Cancel a sale line with its mirror image, which names the original and why."""
    reason = (reason or "").strip()
    if not reason:
        raise BarError(_("Indiquez le motif de l'annulation (erreur de saisie, produit rendu…)."))
    head = await lock_head(session, site)
    original = await session.get(SaleLine, int(line_id)) if digits(str(line_id or "")) else None
    if original is None or original.site_id != site.id:
        raise BarError(_("Ligne de vente inconnue."))
    if original.kind != LineKind.SALE:
        raise BarError(_("Une annulation ne s'annule pas : enregistrez à nouveau la vente."))
    done = await session.scalar(select(SaleLine.seq).where(SaleLine.cancels_id == original.id))
    if done is not None:
        raise BarError(_("Cette ligne est déjà annulée (ligne n° %(seq)s).", seq=done))
    if original.ticket_id is not None:
        ticket = await session.get(Ticket, original.ticket_id, with_for_update=True, populate_existing=True)
        if ticket is None:  # the line's foreign key guarantees it
            raise LookupError(f"Ticket {original.ticket_id} does not exist")
        if ticket.status == TicketStatus.PAID:
            raise BarError(_("Cette vente est déjà payée par carte : un remboursement se fait depuis Stripe."))
    now = now or utcnow()
    line = SaleLine(site_id=site.id, org_id=site.org_id, day=business_day(head, now), recorded_at=now, kind=LineKind.CANCEL,
                    member_id=original.member_id, ticket_id=original.ticket_id, product_id=original.product_id,
                    label=original.label, category=original.category, unit_price=original.unit_price,
                    quantity=-original.quantity, amount=-original.amount, vat_rate=original.vat_rate,
                    currency=original.currency, cancels_id=original.id, reason=reason[:200], recorded_by=recorded_by[:200])
    return await _write(session, head, line, original.seq)


# --- walk-in tickets --------------------------------------------------------------------


async def open_ticket(session: AsyncSession, site: Site, *, created_by: str = "") -> Ticket:
    ticket = Ticket(site_id=site.id, org_id=site.org_id, status=TicketStatus.OPEN, created_by=created_by[:200])
    session.add(ticket)
    await session.flush()
    return ticket


async def ticket_total(session: AsyncSession, ticket_id: int) -> tuple[int, str]:
    row = (await session.execute(select(func.coalesce(func.sum(SaleLine.amount), 0), func.min(SaleLine.currency))
                                 .where(SaleLine.ticket_id == ticket_id))).one()
    return int(row[0]), row[1] or "EUR"


async def cancel_ticket(session: AsyncSession, site: Site, ticket: Ticket, *, reason: str, recorded_by: str = "") -> int:
    """Cancel every live line of an unpaid walk-in ticket, then close it."""
    await session.refresh(ticket, with_for_update=True)
    if ticket.status == TicketStatus.PAID:
        raise BarError(_("Cette vente est déjà payée par carte : un remboursement se fait depuis Stripe."))
    done = select(SaleLine.cancels_id).where(SaleLine.ticket_id == ticket.id, SaleLine.cancels_id.is_not(None))
    lines = (await session.scalars(
        select(SaleLine).where(SaleLine.ticket_id == ticket.id, SaleLine.kind == LineKind.SALE, SaleLine.id.not_in(done))
        .order_by(SaleLine.seq))).all()
    for line in lines:
        await cancel(session, site, line_id=line.id, reason=reason, recorded_by=recorded_by)
    ticket.status = TicketStatus.CANCELED
    await session.flush()
    return len(lines)


# --- what the till shows ----------------------------------------------------------------


async def lines_of(session: AsyncSession, *, site_id: int, member_id: int | None = None, ticket_id: int | None = None,
                   open_only: bool = False, limit: int = 100) -> list[SaleLine]:
    query = select(SaleLine).where(SaleLine.site_id == site_id)
    if member_id is not None:
        query = query.where(open_lines(site_id, member_id) if open_only else SaleLine.member_id == member_id)
    if ticket_id is not None:
        query = query.where(SaleLine.ticket_id == ticket_id)
    return list((await session.scalars(query.order_by(SaleLine.seq.desc()).limit(limit))).all())


async def canceled_ids(session: AsyncSession, line_ids: list[int]) -> set[int]:
    if not line_ids:
        return set()
    found = (await session.scalars(select(SaleLine.cancels_id).where(SaleLine.cancels_id.in_(line_ids)))).all()
    return cast("set[int]", set(found))  # IN (…) never matches NULL


@dataclass(frozen=True)
class DaySummary:
    day: dt.date
    count: int
    total: int
    on_tabs: int
    walk_in: int
    cancellations: int
    by_product: list[tuple[str, int, int]]  # label, net quantity, net amount


async def day_summary(session: AsyncSession, site_id: int, day: dt.date) -> DaySummary:
    on_tab = case((SaleLine.member_id.is_not(None), SaleLine.amount), else_=0)
    row = (await session.execute(select(
        func.count(SaleLine.id), func.coalesce(func.sum(SaleLine.amount), 0), func.coalesce(func.sum(on_tab), 0),
        func.coalesce(func.sum(case((SaleLine.kind == LineKind.CANCEL, 1), else_=0)), 0),
    ).where(SaleLine.site_id == site_id, SaleLine.day == day))).one()
    products = (await session.execute(
        select(SaleLine.label, func.sum(SaleLine.quantity), func.sum(SaleLine.amount))
        .where(SaleLine.site_id == site_id, SaleLine.day == day).group_by(SaleLine.label)
        .order_by(func.sum(SaleLine.amount).desc(), SaleLine.label))).all()
    total, tabs = int(row[1]), int(row[2])
    return DaySummary(day, int(row[0]), total, tabs, total - tabs, int(row[3]),
                      [(label, int(q), int(a)) for label, q, a in products])


async def find_members(session: AsyncSession, site: Site, query: str, *, limit: int = 12) -> list[User]:
    """Members by name or e-mail (accents and case as typed are matched loosely)."""
    text = (query or "").strip()
    if len(text) < 2:
        return []
    pattern = f"%{fold(text)}%"
    return list((await session.scalars(
        select(User).join(Membership, Membership.user_id == User.id)
        .where(Membership.role == Role.MEMBER, Membership.org_id == site.org_id, User.active,
                           folded(User.name).like(pattern) | func.lower(User.email).like(pattern))
        .order_by(User.name).limit(limit))).all())
