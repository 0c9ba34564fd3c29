"""``funding bar …``: closings, archives, cut-off, a member's departure, products import."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import select

from funding.bar.models import TillClosingKind


def _who() -> str:
    from funding.cli import who

    return who()


async def _sites(session, slug: str | None):
    """The named site, or every site whose till has been used."""
    from funding.bar.models import TillHead
    from funding.cli import CommandError
    from funding.orgs.models import Site

    if slug:
        site = await session.scalar(select(Site).where(Site.slug == slug))
        if site is None:
            raise CommandError(f"unknown site {slug!r}")
        return [site]
    return list((await session.scalars(select(Site).join(TillHead, TillHead.site_id == Site.id).order_by(Site.id))).all())


def _day(text: str | None) -> dt.date | None:
    from funding.cli import CommandError

    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"invalid date {text!r} (YYYY-MM-DD)") from None


def _total(view: dict) -> str:
    from funding.money import format_plain

    return ", ".join(f"{format_plain(v, c)} {c}" for c, v in view.items()) or "0"


async def cmd_close_day(args, ctx) -> int:
    from funding.bar.closings import close_day, closing_view
    from funding.bar.till import BarError
    from funding.cli import CommandError, _out
    from funding.db import transaction

    day = _day(args.date)
    try:
        async with transaction(ctx.sessions) as session:
            made = []
            for site in await _sites(session, args.site):
                made += [(site, c) for c in await close_day(session, site, day, closed_by=_who())]
    except BarError as exc:
        raise CommandError(str(exc)) from None
    for site, closing in made:
        view = closing_view(closing)
        _out(f"{site.slug} {closing.period}: closed — {closing.line_count} lines ({closing.cancel_count} cancelling), "
             f"total {_total(view['period_total'])}, fiscal year {_total(view['fiscal_year_total'])}, "
             f"grand total {_total(view['grand_total'])}")
    return 0


async def cmd_close_period(args, ctx) -> int:
    from funding.bar.closings import close_month, close_year, closing_view
    from funding.bar.till import BarError
    from funding.cli import CommandError, _out
    from funding.db import transaction

    try:
        async with transaction(ctx.sessions) as session:
            done = []
            for site in await _sites(session, args.site):
                if args.kind == TillClosingKind.MONTH:
                    done.append((site, await close_month(session, site, args.period, closed_by=_who()), None))
                else:
                    closing, archive = await close_year(session, site, args.period, closed_by=_who())
                    done.append((site, closing, archive))
    except BarError as exc:
        raise CommandError(str(exc)) from None
    for site, closing, archive in done:
        _out(f"{site.slug} {closing.period}: closed — total {_total(closing_view(closing)['period_total'])}")
        if archive is not None:
            _out(f"{site.slug} {archive.period}: archived {archive.line_count} lines as {archive.filename}, "
                 f"sha256 {archive.sha256}")
    return 0


async def cmd_archive_export(args, ctx) -> int:
    from funding.bar.models import Archive
    from funding.cli import CommandError, _out

    out = Path(args.out)
    if not out.is_dir():
        raise CommandError(f"no such directory: {args.out}")
    async with ctx.sessions() as session:
        [site] = await _sites(session, args.site)
        archives = (await session.scalars(select(Archive).where(Archive.site_id == site.id).order_by(Archive.id))).all()
    if not archives:
        raise CommandError(f"{site.slug}: no archive yet (they are made when a fiscal year is closed)")
    for archive in archives:
        (out / archive.filename).write_text(archive.content, encoding="utf-8")
        (out / f"{archive.filename}.sha256").write_text(
            f"{archive.sha256}  {archive.filename}\nchain {archive.prev_hash} -> {archive.hash}\n", encoding="utf-8")
        _out(f"{out / archive.filename} (sha256 {archive.sha256})")
    return 0


async def cmd_cutoff(args, ctx) -> int:
    from funding.bar.settlement import cut_off, cutoff_key
    from funding.bar.till import local_today
    from funding.cli import _out

    async with ctx.sessions() as session:
        ids = [s.id for s in await _sites(session, args.site)]
    made = await cut_off(ctx.sessions, key=args.key or cutoff_key(local_today()), site_ids=ids)
    _out(f"{len(made)} tab(s) cut off into batches; the worker bills them (or run `funding bar bill`)")
    return 0


async def cmd_bill(args, ctx) -> int:
    from funding.bar.settlement import billing_job
    from funding.cli import _gateway, _out

    async with _gateway(ctx.settings) as gw:
        done = await billing_job(ctx.sessions, ctx.settings, gw)
    _out(f"{done} batch(es) billed or marked due")
    return 0


async def cmd_settle(args, ctx) -> int:
    from funding.auth.models import User
    from funding.auth.service import AuthError, is_member_of, normalise_email
    from funding.bar.settlement import bill, settle_departure
    from funding.bar.till import BarError
    from funding.cli import CommandError, _gateway, _out
    from funding.db import transaction
    from funding.money import format_plain

    try:
        email = normalise_email(args.member)
    except AuthError as exc:
        raise CommandError(str(exc)) from None
    try:
        async with transaction(ctx.sessions) as session:
            user = await session.scalar(select(User).where(User.email == email))
            [site] = await _sites(session, args.site)
            if user is None or not await is_member_of(session, user.id, site.org_id):
                raise CommandError(f"no member {email} at {site.slug}")
            batch = await settle_departure(session, site, user.id)
    except BarError as exc:
        raise CommandError(str(exc)) from None
    async with _gateway(ctx.settings) as gw:
        status = await bill(ctx.sessions, gw, batch.id)
    _out(f"{email} at {site.slug}: tab of {format_plain(batch.amount, batch.currency)} {batch.currency} "
         f"in batch {batch.id}, now {status}")
    return 0


async def cmd_import(args, ctx) -> int:
    from funding.bar.catalog import import_rows, parse_csv
    from funding.bar.till import BarError
    from funding.cli import CommandError, _out
    from funding.db import transaction

    path = Path(args.file)
    if not path.is_file():
        raise CommandError(f"no such file: {args.file}")
    try:
        rows = parse_csv(path.read_bytes())
        async with transaction(ctx.sessions) as session:
            [site] = await _sites(session, args.site)
            added, updated = await import_rows(session, site, rows)
    except BarError as exc:
        raise CommandError(f"{args.file}: {exc} — nothing was imported") from None
    _out(f"{site.slug}: {added} product(s) added, {updated} updated")
    return 0


def register(sub) -> None:
    bar = sub.add_parser("bar", help="the snack/bar: closings, archives, tabs").add_subparsers(dest="bar_command",
                                                                                               required=True)
    cd = bar.add_parser("close-day", help="close a day of the till (today by default), after any open earlier day")
    cd.add_argument("--site", help="site slug (default: every site)")
    cd.add_argument("--date", help="YYYY-MM-DD")
    cd.set_defaults(run=cmd_close_day)
    cm = bar.add_parser("close-month", help="close a month that is over (YYYY-MM)")
    cm.add_argument("period")
    cm.add_argument("--site")
    cm.set_defaults(run=cmd_close_period, kind=TillClosingKind.MONTH)
    cy = bar.add_parser("close-year", help="close a fiscal year that is over (the year it starts) and archive it")
    cy.add_argument("period")
    cy.add_argument("--site")
    cy.set_defaults(run=cmd_close_period, kind=TillClosingKind.YEAR)
    ae = bar.add_parser("archive-export", help="write a site's yearly archives (JSON) and their checksums to a directory")
    ae.add_argument("--site", required=True)
    ae.add_argument("--out", required=True)
    ae.set_defaults(run=cmd_archive_export)
    co = bar.add_parser("cutoff", help="turn every open tab into a batch now (the worker does it on BAR_CUTOFF_DAY)")
    co.add_argument("--site")
    co.add_argument("--key", help="cut-off key (default: this month, YYYY-MM)")
    co.set_defaults(run=cmd_cutoff)
    bl = bar.add_parser("bill", help="bill the batches that are ready (invoice item, card or member's area)")
    bl.set_defaults(run=cmd_bill, serving=True)
    st = bar.add_parser("settle", help="settle a leaving member's open tab now")
    st.add_argument("--site", required=True)
    st.add_argument("--member", required=True, help="the member's e-mail")
    st.set_defaults(run=cmd_settle, serving=True)
    pi = bar.add_parser("import-products", help="import a site's products from a CSV file (nom;categorie;prix;tva;actif)")
    pi.add_argument("file")
    pi.add_argument("--site", required=True)
    pi.set_defaults(run=cmd_import)
