"""The ``funding`` command line.

Every command prints a clear one-line error and exits non-zero on bad input; no
stack trace reaches the person typing (set FUNDING_DEBUG=1 to see one).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import os
import sys
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from funding.errors import FundingError
from funding.settings import ConfigError, Settings, load_settings


class CommandError(FundingError):
    """A refused command; the message is printed as is."""


@dataclass
class Context:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    actor: str = ""  # who acts: the ``--as`` person, else the operator's login (see who())
    scope: object = None  # the ``--as`` person's organisations (funding.scoping.OrgScope), None for the operator

    def check_network(self, network: bool) -> None:
        """A role over the whole network is given by the operator or a network admin only."""
        if network and self.scope is not None and not self.scope.everything:
            raise CommandError("only the operator or an admin of the whole network gives a network role")


# What ``funding --as EMAIL …`` asks of that person, per command: one of these roles, and
# then every session of the command sees only the organisations where they hold it
# (funding.scoping). A command not listed here acts on the installation itself (schema,
# processes, the Stripe account): only the operator runs it, without --as.
_ADMIN, _STAFF, _BOOKS, _EXPORTERS = ("admin",), ("admin", "staff"), ("admin", "staff", "accountant"), ("admin", "accountant")
AS_ROLES: dict[str, tuple[str, ...]] = {
    "site create": _ADMIN, "user create": _ADMIN, "user grant": _ADMIN, "user login-link": _ADMIN,
    "ledger verify": _BOOKS, "ledger close": _STAFF, "ledger reverse": _STAFF, "ledger record": _STAFF,
    "ledger trial-balance": _BOOKS, "ledger accounts": _STAFF,
    "export": _EXPORTERS, "exports send": _EXPORTERS, "exports recipients": _ADMIN, "exports log": _EXPORTERS,
    "campaigns list": _BOOKS, "plans list": _BOOKS, "bar archive-export": _BOOKS,
    **{f"campaigns {c}": _STAFF for c in ("create", "edit", "tier-add", "match", "publish", "archive", "deliver",
                                          "receipts-issuer", "receipts-summary")},
    **{f"plans {c}": _STAFF for c in ("set",)},
    **{f"bar {c}": _STAFF for c in ("close-day", "close-month", "close-year", "import-products")},
}


def command_path(args) -> str:
    sub = getattr(args, f"{args.command}_command", None)
    return f"{args.command} {sub}" if sub else args.command


@asynccontextmanager
async def open_context(settings: Settings, *, as_email: str | None = None, roles: tuple[str, ...] | None = None):
    """The command's engine and sessions; with ``as_email``, sessions walled to that person's
    organisations where they hold one of ``roles``."""
    from funding.db import create_engine, sessions_for

    engine = create_engine(settings.database_url)
    try:
        scope = await _scope_of(engine, as_email, roles or ()) if as_email is not None else None
        yield Context(settings, engine, sessions_for(engine, settings, scope=scope), who(), scope)
    finally:
        await engine.dispose()


async def _scope_of(engine: AsyncEngine, email: str, roles: tuple[str, ...]):
    from funding.auth.models import User
    from funding.auth.service import AuthError, grants_of, normalise_email
    from funding.db import session_factory
    from funding.scoping import OrgScope

    try:
        email = normalise_email(email)
    except AuthError as exc:
        raise CommandError(f"--as: {exc}") from None
    async with session_factory(engine)() as session:
        user = await session.scalar(select(User).where(User.email == email, User.active))
        if user is None:
            raise CommandError(f"--as: no active user {email}")
        grants = await grants_of(session, user.id)
    if any(org is None and role in roles for org, role in grants):
        return OrgScope(None, user.id)
    orgs = frozenset(org for org, role in grants if org is not None and role in roles)
    if not orgs:
        raise CommandError(f"--as: {email} holds none of the roles {', '.join(roles)} in any organisation")
    return OrgScope(orgs, user.id)


def _out(text: str = "") -> None:
    print(text, flush=True)


_actor: ContextVar[str] = ContextVar("actor", default="")


def who() -> str:
    """Who acts, for the records' ``created_by``: the ``--as`` person, else the operator's login."""
    return _actor.get() or os.environ.get("USER", "cli")


_who = who


# --- db ---------------------------------------------------------------------------


def cmd_db_upgrade(args, settings: Settings) -> int:
    """Migrate as the schema's owner, then give the service's role what each table needs."""
    from funding.migrate import upgrade_and_grant

    role = upgrade_and_grant(settings)
    _out("database is at the latest migration")
    if role:
        _out(f"the service's role {role} holds exactly the privileges funding/grants.py gives it")
    return 0


# --- organisations, sites, users ----------------------------------------------------


async def cmd_org_create(args, ctx: Context) -> int:
    from funding.db import transaction
    from funding.orgs.service import OrgError, create_organisation

    try:
        async with transaction(ctx.sessions) as session:
            org = await create_organisation(
                session, name=args.name, siren=args.siren, vat_number=args.vat_number, vat_liable=args.vat_liable,
                general_interest=args.general_interest, rna=args.rna, address=args.address or "",
            )
    except OrgError as exc:
        raise CommandError(str(exc)) from None
    _out(f"organisation {org.name} ({org.siren}) created with its chart of accounts")
    return 0


async def cmd_site_create(args, ctx: Context) -> int:
    from funding.db import transaction
    from funding.orgs.service import OrgError, create_site, organisation_for

    try:
        async with transaction(ctx.sessions) as session:
            org = await organisation_for(session, args.org)
            site = await create_site(session, org_id=org.id, slug=args.slug, name=args.name, town=args.town or "",
                                     is_central=args.central)
    except OrgError as exc:
        raise CommandError(str(exc)) from None
    _out(f"site {site.slug} ({site.name}) created")
    return 0


async def cmd_user_create(args, ctx: Context) -> int:
    from funding.auth.service import AuthError, create_user, normalise_email
    from funding.db import transaction
    from funding.orgs.service import OrgError, organisation_for

    ctx.check_network(args.network)
    try:
        normalise_email(args.email)
        async with transaction(ctx.sessions) as session:
            org = None if args.network else await organisation_for(session, args.org)
            user = await create_user(session, email=args.email, name=args.name, role=args.role,
                                     org_id=org.id if org else None, network=args.network, granted_by=_who())
    except (AuthError, OrgError) as exc:
        raise CommandError(str(exc)) from None
    _out(f"user {user.email} created, {args.role} of {'the whole network' if args.network else org.siren}")
    return 0


async def cmd_user_grant(args, ctx: Context) -> int:
    """Give (or with --revoke take back) a role in an organisation or the network."""
    from funding.auth.models import User
    from funding.auth.service import AuthError, grant, normalise_email, revoke
    from funding.db import transaction
    from funding.orgs.service import OrgError, organisation_for
    from funding.scoping import THROUGH_THE_WALL

    ctx.check_network(args.network)
    try:
        async with transaction(ctx.sessions) as session:
            user = await session.scalar(select(User).where(User.email == normalise_email(args.email))
                                        .execution_options(**THROUGH_THE_WALL))
            if user is None:
                raise CommandError(f"no user {args.email}")
            org = None if args.network else await organisation_for(session, args.org)
            where = "the whole network" if args.network else org.siren
            if args.revoke:
                done = await revoke(session, user, args.role, org_id=org.id if org else None)
                _out(f"{user.email}: {args.role} of {where} {'revoked' if done else 'was not granted'}")
            else:
                done = await grant(session, user, args.role, org_id=org.id if org else None, network=args.network,
                                   granted_by=_who())
                _out(f"{user.email}: {args.role} of {where} {'granted' if done else 'already held'}")
    except (AuthError, OrgError) as exc:
        raise CommandError(str(exc)) from None
    return 0


async def cmd_user_link(args, ctx: Context) -> int:
    from funding.auth.models import User
    from funding.auth.service import issue_link, normalise_email, AuthError
    from funding.db import transaction

    try:
        email = normalise_email(args.email)
    except AuthError as exc:
        raise CommandError(str(exc)) from None
    async with transaction(ctx.sessions) as session:
        user = await session.scalar(select(User).where(User.email == email, User.active))
        if user is None:
            raise CommandError(f"no active user {email}")
        link = await issue_link(session, user, ctx.settings)
    _out(link)
    return 0


# --- ledger -------------------------------------------------------------------------


async def cmd_ledger_verify(args, ctx: Context) -> int:
    from funding.ledger.seals import Keyring, SealError, read_kept
    from funding.ledger.verify import verify_org
    from funding.orgs.models import Organisation
    from funding.orgs.service import OrgError, organisation_for

    try:
        kept = await asyncio.to_thread(read_kept, args.seals) if args.seals else None
    except SealError as exc:
        raise CommandError(f"--seals: {exc}") from None
    async with ctx.sessions() as session:
        try:
            orgs = [await organisation_for(session, args.org)] if args.org else (
                await session.scalars(select(Organisation).order_by(Organisation.id))
            ).all()
        except OrgError as exc:
            raise CommandError(str(exc)) from None
    if not orgs:
        raise CommandError("no organisation: nothing to verify")
    broken = 0
    if kept is not None:
        if not kept:
            raise CommandError(f"--seals: {args.seals} holds no seal")
        strangers = sorted({s.siren for s in kept} - {o.siren for o in orgs})
        if strangers and not args.org:
            broken += 1
            _out(f"BROKEN — the seals name organisation(s) {', '.join(strangers)}, which this database does not hold")
    keyring = Keyring.from_settings(ctx.settings)
    async with ctx.engine.connect() as conn:
        for org in orgs:
            report = await verify_org(conn, org.id, keyring=keyring, kept=kept)
            if report.ok:
                more = "".join(f", {n} {what}" for what, n in report.counts.items())
                notes = "".join(f" ({note})" for note in sorted(report.notes))
                _out(f"{org.siren} {org.name}: OK — {report.entries} entries, {report.postings} postings, "
                     f"{report.closings} closings{more}; chain, balances and seals verified{notes}")
            else:
                broken += 1
                _out(f"{org.siren} {org.name}: BROKEN — first problem: {report.problems[0]}")
                for problem in report.problems[1:10]:
                    _out(f"  also: {problem}")
    return 1 if broken else 0


def cmd_ledger_seal_key(args, settings: Settings) -> int:
    """A key for LEDGER_SEAL_KEY (keep it in the environment, never in the database), and its public
    half (publish it: it is what every copy of the seals is checked against)."""
    from funding.ledger.seals import Keyring
    from funding.settings import generate_seal_key

    key = generate_seal_key()
    keyring = Keyring.from_settings(settings.with_(seal_key=key, seal_public_keys=()))
    _out(f"LEDGER_SEAL_KEY={key}")
    _out(f"# public key {keyring.key_id}: {keyring.public_keys()[keyring.key_id]}")
    _out("# when you replace a key, add the old public key to LEDGER_SEAL_PUBLIC_KEYS so its seals stay trusted")
    return 0


async def cmd_ledger_close(args, ctx: Context) -> int:
    from funding.db import transaction
    from funding.ledger.service import LedgerError, close_month
    from funding.orgs.service import OrgError, organisation_for

    try:
        async with transaction(ctx.sessions) as session:
            org = await organisation_for(session, args.org)
            closing = await close_month(session, org.id, args.period, closed_by=who())
    except (LedgerError, OrgError) as exc:
        raise CommandError(str(exc)) from None
    _out(f"{org.siren}: {closing.period} closed — {closing.entry_count} entries, grand total {closing.grand_total}")
    return 0


async def cmd_ledger_reverse(args, ctx: Context) -> int:
    from funding.db import transaction
    from funding.ledger.service import LedgerError, reverse
    from funding.orgs.service import OrgError, organisation_for

    try:
        async with transaction(ctx.sessions) as session:
            org = await organisation_for(session, args.org)
            posted = await reverse(session, org.id, args.number, reason=args.reason, created_by=who())
    except (LedgerError, OrgError) as exc:
        raise CommandError(str(exc)) from None
    _out(f"entry {args.number} reversed by entry {posted.number}")
    return 0


async def cmd_ledger_record(args, ctx: Context) -> int:
    from funding.db import transaction
    from funding.ledger import records

    if args.file:
        path = Path(args.file)
        if not path.is_file():
            raise CommandError(f"no such file: {args.file}")
        try:
            batch = records.parse_csv(path.read_bytes())
        except records.RecordError as exc:
            raise CommandError(f"{args.file}: {exc}") from None
    else:
        if not args.kind:
            raise CommandError("give the kind of operation (" + ", ".join(records.KINDS) + ") or --file FILE.csv")
        if not args.date or not args.amount:
            raise CommandError("--date and --amount are required")
        batch = [records.Record(
            kind=args.kind, site=args.site or "", date=args.date, amount=args.amount, currency=args.currency,
            label=args.label or "", piece_ref=args.piece or "", funder=args.funder or "",
            funder_siret=args.funder_siret or "", reference=args.reference or "", object=args.object or "",
            debit=args.debit or "", credit=args.credit or "", source=args.source or "", vat_rate=args.vat_rate or "",
        )]
    try:
        async with transaction(ctx.sessions) as session:
            outcomes = await records.record_many(session, batch, created_by=who())
    except records.RecordError as exc:
        raise CommandError(f"{exc} — nothing was recorded") from None
    for outcome in outcomes:
        state = "recorded as" if outcome.entry.created else "already recorded as"
        _out(f"{outcome.record.kind} {outcome.record.amount} {outcome.record.currency}: {state} entry {outcome.entry.number}")
    return 0


async def cmd_ledger_balance(args, ctx: Context) -> int:
    from funding.ledger.service import totals_by_currency, trial_balance
    from funding.money import format_plain
    from funding.orgs.service import OrgError, organisation_for, site_by_slug

    async with ctx.sessions() as session:
        try:
            org = await organisation_for(session, args.org) if args.org else None
            site = await site_by_slug(session, args.site) if args.site else None
        except OrgError as exc:
            raise CommandError(str(exc)) from None
        rows = await trial_balance(session, org_id=org.id if org else None, site_id=site.id if site else None,
                                   start=_date(args.start), end=_date(args.end))
    _out(f"{'compte':<10} {'intitulé':<45} {'débit':>14} {'crédit':>14} {'solde':>14}")
    for r in rows:
        _out(f"{r.account:<10} {r.label[:45]:<45} {format_plain(r.debit, r.currency):>14} "
             f"{format_plain(r.credit, r.currency):>14} {format_plain(r.balance, r.currency):>14} {r.currency}")
    for cur, (d, c) in totals_by_currency(rows).items():
        _out(f"{'TOTAL':<56} {format_plain(d, cur):>14} {format_plain(c, cur):>14} {format_plain(d - c, cur):>14} {cur}")
    return 0


async def cmd_ledger_accounts(args, ctx: Context) -> int:
    from funding.db import transaction
    from funding.ledger.chart import check_account_number
    from funding.ledger.models import Account
    from funding.orgs.service import OrgError, organisation_for

    try:
        async with transaction(ctx.sessions) as session:
            org = await organisation_for(session, args.org)
            if args.add:
                number = check_account_number(args.add[0])
                if await session.scalar(select(Account.id).where(Account.org_id == org.id, Account.number == number)):
                    raise CommandError(f"account {number} already exists")
                session.add(Account(org_id=org.id, number=number, label=args.add[1]))
                _out(f"account {number} {args.add[1]} added")
                return 0
            for acc in (await session.scalars(select(Account).where(Account.org_id == org.id).order_by(Account.number))).all():
                _out(f"{acc.number:<10} {acc.label}{'' if acc.active else ' (inactive)'}")
    except (OrgError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    return 0


def _date(text: str | None) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"invalid date {text!r} (YYYY-MM-DD)") from None


# --- Stripe ---------------------------------------------------------------------------


@asynccontextmanager
async def _gateway(settings: Settings):
    from funding.stripe_gateway import StripeGateway

    gw = StripeGateway(settings)
    try:
        yield gw
    finally:
        await gw.aclose()


async def cmd_stripe_sync(args, ctx: Context) -> int:
    from funding.stripe_gateway import GatewayError
    from webhooks.sync import sync

    since = _date(args.since)
    if since is None:
        raise CommandError("--since DATE is required (YYYY-MM-DD; the Events API keeps 30 days)")
    async with _gateway(ctx.settings) as gw:
        try:
            report = await sync(ctx.sessions, gw, dt.datetime.combine(since, dt.time(), dt.timezone.utc))
        except GatewayError as exc:
            raise CommandError(f"Stripe: {exc}") from None
    _out(f"events not delivered: {report.events_seen} ({report.events_new} new), processed {report.events_processed}; "
         f"balance transactions: {report.transactions_seen} seen, {report.transactions_booked} booked now")
    return 0


async def cmd_reconcile(args, ctx: Context) -> int:
    from funding.payments.reconcile import reconcile
    from funding.money import format_plain
    from funding.stripe_gateway import GatewayError

    async with _gateway(ctx.settings) as gw:
        try:
            checks = await reconcile(ctx.sessions, gw, only_unreconciled=not args.all)
        except GatewayError as exc:
            raise CommandError(f"Stripe: {exc}") from None
    bad = 0
    for check in checks:
        if check.ok:
            _out(f"{check.payout_id}: reconciled — {format_plain(check.amount, check.currency)} {check.currency}")
        else:
            bad += 1
            detail = []
            if check.difference:
                detail.append(f"payout {format_plain(check.amount, check.currency)} ≠ transactions "
                              f"{format_plain(check.transactions_net, check.currency)} (difference "
                              f"{format_plain(check.difference, check.currency)})")
            if check.missing:
                detail.append(f"no ledger entry for {', '.join(check.missing)}")
            _out(f"{check.payout_id}: UNRECONCILED — {'; '.join(detail)}")
    if not checks:
        _out("no payout to check")
    return 1 if bad else 0


async def cmd_webhooks_replay(args, ctx: Context) -> int:
    from funding.stripe_gateway import GatewayError
    from webhooks.sync import replay

    if not args.event_id.startswith("evt_"):
        raise CommandError(f"not an event id: {args.event_id} (evt_…)")
    async with _gateway(ctx.settings) as gw:
        try:
            status = await replay(ctx.sessions, gw, args.event_id)
        except GatewayError as exc:
            raise CommandError(f"Stripe: {exc}") from None
    _out(f"{args.event_id}: {status}")
    return 0 if status == "processed" else 1


async def cmd_webhooks_list(args, ctx: Context) -> int:
    from funding.payments.models import StripeEvent

    async with ctx.sessions() as session:
        query = select(StripeEvent).order_by(StripeEvent.received_at.desc()).limit(args.limit)
        if args.status:
            query = query.where(StripeEvent.status == args.status)
        for event in (await session.scalars(query)).all():
            _out(f"{event.id}  {event.type:<40} {event.status:<10} attempts={event.attempts}"
                 + (f"  {event.last_error[:120]}" if event.last_error else ""))
    return 0


# --- processes ------------------------------------------------------------------------


def cmd_worker(args, settings: Settings) -> int:
    from funding.worker import run_worker

    asyncio.run(run_worker(settings, once=args.once))
    return 0


def cmd_demo(args, settings: Settings) -> int:
    from funding.demo.run import run_demo

    return run_demo(settings, host=args.host, port=args.port, reset=args.reset)


# --- parser ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="funding", description="Entre-Lab Funding: the money service of the tiers-lieux.")
    parser.add_argument("--as", dest="as_email", metavar="EMAIL",
                        help="act as this person: only the organisations where they hold the role the command needs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="run the service with demo data and the offline Stripe sandbox")
    demo.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--reset", action="store_true", help="start from an empty demo database")
    demo.set_defaults(sync=cmd_demo, serving=True)

    worker = sub.add_parser("worker", help="background jobs: webhooks, emails, deadlines")
    worker.add_argument("--once", action="store_true", help="run every job once and exit")
    worker.set_defaults(sync=cmd_worker, serving=True)

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="apply every migration").set_defaults(sync=cmd_db_upgrade)

    org = sub.add_parser("org", help="organisations").add_subparsers(dest="org_command", required=True)
    oc = org.add_parser("create", help="create an organisation and its chart of accounts")
    oc.add_argument("--name", required=True)
    oc.add_argument("--siren", required=True)
    oc.add_argument("--vat-number")
    oc.add_argument("--vat-liable", action="store_true")
    oc.add_argument("--general-interest", action="store_true")
    oc.add_argument("--rna")
    oc.add_argument("--address")
    oc.set_defaults(run=cmd_org_create)

    site = sub.add_parser("site", help="sites (tiers-lieux)").add_subparsers(dest="site_command", required=True)
    sc = site.add_parser("create", help="create a site")
    sc.add_argument("--org", help="SIREN (optional with a single organisation)")
    sc.add_argument("--slug", required=True)
    sc.add_argument("--name", required=True)
    sc.add_argument("--town")
    sc.add_argument("--central", action="store_true")
    sc.set_defaults(run=cmd_site_create)

    user = sub.add_parser("user", help="people who log in").add_subparsers(dest="user_command", required=True)
    uc = user.add_parser("create", help="create a user")
    uc.add_argument("--email", required=True)
    uc.add_argument("--name", required=True)
    uc.add_argument("--role", required=True, choices=["admin", "staff", "accountant", "member"])
    where = uc.add_mutually_exclusive_group()
    where.add_argument("--org", help="SIREN (optional with a single organisation)")
    where.add_argument("--network", action="store_true", help="the role in every organisation (the federation)")
    uc.set_defaults(run=cmd_user_create)
    ug = user.add_parser("grant", help="give a person a role in an organisation (or --network), or --revoke it")
    ug.add_argument("email")
    ug.add_argument("--role", required=True, choices=["admin", "staff", "accountant", "member"])
    where = ug.add_mutually_exclusive_group()
    where.add_argument("--org", help="SIREN (optional with a single organisation)")
    where.add_argument("--network", action="store_true", help="the role in every organisation (the federation)")
    ug.add_argument("--revoke", action="store_true", help="take the role back")
    ug.set_defaults(run=cmd_user_grant)
    ul = user.add_parser("login-link", help="print a single-use login link (bootstrap the first admin)")
    ul.add_argument("email")
    ul.set_defaults(run=cmd_user_link, serving=True)

    ledger = sub.add_parser("ledger", help="the double-entry ledger").add_subparsers(dest="ledger_command", required=True)
    lv = ledger.add_parser("verify", help="recompute the chain and the balances; non-zero exit names the first broken entry")
    lv.add_argument("--org", help="SIREN")
    lv.add_argument("--seals", metavar="FILE|URL",
                    help="seals kept elsewhere (the published feed saved earlier, a CSV): the books must pass through each")
    lv.set_defaults(run=cmd_ledger_verify)
    lk = ledger.add_parser("seal-key", help="make a new Ed25519 key for LEDGER_SEAL_KEY and print its public half")
    lk.set_defaults(sync=cmd_ledger_seal_key)
    lc = ledger.add_parser("close", help="close a month (YYYY-MM)")
    lc.add_argument("period")
    lc.add_argument("--org", help="SIREN")
    lc.set_defaults(run=cmd_ledger_close)
    lr = ledger.add_parser("reverse", help="cancel an entry by a reversing entry")
    lr.add_argument("number", type=int)
    lr.add_argument("--reason", required=True)
    lr.add_argument("--org", help="SIREN")
    lr.set_defaults(run=cmd_ledger_reverse)
    rec = ledger.add_parser("record", help="record money outside Stripe: grants, patronage, sponsoring, transfers")
    rec.add_argument("kind", nargs="?", help="grant-notified, grant-paid, patronage, sponsoring, transfer")
    rec.add_argument("--file", help="a CSV file of operations (header: kind,site,date,amount,...)")
    rec.add_argument("--site")
    rec.add_argument("--date")
    rec.add_argument("--amount", help="e.g. 1234,56")
    rec.add_argument("--currency", default="EUR")
    rec.add_argument("--label")
    rec.add_argument("--piece", help="piece reference (bank statement, receipt)")
    rec.add_argument("--funder", help="funder, patron or sponsor")
    rec.add_argument("--funder-siret")
    rec.add_argument("--reference", help="grant decision or agreement reference")
    rec.add_argument("--object", help="what the grant is for")
    rec.add_argument("--debit", help="transfer: debited account")
    rec.add_argument("--credit", help="transfer: credited account")
    rec.add_argument("--source", help="transfer: public, private, crowdfunding, self or internal")
    rec.add_argument("--vat-rate", help="sponsoring: 20, 10, 5.5 or 0")
    rec.set_defaults(run=cmd_ledger_record)
    tb = ledger.add_parser("trial-balance", help="debit, credit and balance per account")
    tb.add_argument("--org", help="SIREN (default: the whole network)")
    tb.add_argument("--site")
    tb.add_argument("--from", dest="start")
    tb.add_argument("--to", dest="end")
    tb.set_defaults(run=cmd_ledger_balance)
    stripe_cmd = sub.add_parser("stripe", help="Stripe").add_subparsers(dest="stripe_command", required=True)
    ss = stripe_cmd.add_parser("sync", help="recover missed events (Events API) and unbooked balance transactions")
    ss.add_argument("--since", required=True, help="YYYY-MM-DD")
    ss.set_defaults(run=cmd_stripe_sync, serving=True)
    rc = sub.add_parser("reconcile", help="check every paid payout against its balance transactions and the ledger")
    rc.add_argument("--all", action="store_true", help="check reconciled payouts again too")
    rc.set_defaults(run=cmd_reconcile, serving=True)
    wh = sub.add_parser("webhooks", help="the webhook inbox").add_subparsers(dest="webhooks_command", required=True)
    wr = wh.add_parser("replay", help="process one event again (fetched from Stripe if we never stored it)")
    wr.add_argument("event_id")
    wr.set_defaults(run=cmd_webhooks_replay, serving=True)
    wl = wh.add_parser("list", help="recent events; --status dead shows the dead letters")
    wl.add_argument("--status", choices=["pending", "processing", "processed", "failed", "dead"])
    wl.add_argument("--limit", type=int, default=50)
    wl.set_defaults(run=cmd_webhooks_list)

    from funding.domains import parts

    for module in parts("cli"):
        module.register(sub)

    la = ledger.add_parser("accounts", help="list the chart of accounts, or --add NUMBER LABEL")
    la.add_argument("--org", help="SIREN")
    la.add_argument("--add", nargs=2, metavar=("NUMBER", "LABEL"))
    la.set_defaults(run=cmd_ledger_accounts)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO if os.environ.get("FUNDING_DEBUG") else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    serving = getattr(args, "serving", False)
    try:
        if args.command == "demo":
            if os.environ.get("FUNDING_ENV") == "production":
                raise CommandError("funding demo is a development tool: unset FUNDING_ENV=production")
            settings = load_settings(serving=serving, FUNDING_ENV="development")
        else:
            settings = load_settings(serving=serving)
        if hasattr(args, "sync"):
            if args.as_email is not None:
                raise CommandError(f"`{command_path(args)}` acts on the installation: the operator runs it, without --as")
            return args.sync(args, settings)

        roles = None
        if args.as_email is not None:
            roles = AS_ROLES.get(command_path(args))
            if roles is None:
                raise CommandError(f"`{command_path(args)}` acts on the installation, not on an organisation's data: "
                                   "the operator runs it, without --as")
            _actor.set(args.as_email)

        async def _run() -> int:
            async with open_context(settings, as_email=args.as_email, roles=roles) as ctx:
                return await args.run(args, ctx)

        return asyncio.run(_run())
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return exc.exit_code
    except FundingError as exc:  # every refusal, whatever its domain: one line
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # never a stack trace for the person at the terminal
        if os.environ.get("FUNDING_DEBUG"):
            raise
        print(f"unexpected error: {type(exc).__name__}: {exc} (FUNDING_DEBUG=1 shows details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    # As ``python -m funding.cli`` this file is ``__main__``: run the importable module instead,
    # so the domains' commands (which import funding.cli) raise the CommandError main() catches.
    from funding.cli import main as _main

    sys.exit(_main())
