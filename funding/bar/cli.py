"""``funding bar …``: closings, archives, cut-off, a member's departure, products import."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import click
from sqlalchemy import select

from funding.bar.models import TillClosingKind
from funding.commands import (
    BOOKS,
    STAFF,
    CommandError,
    Context,
    command,
    group,
    out,
    parse_day,
    read_file,
    root,
    stripe_gateway,
    who,
)

if TYPE_CHECKING:
    from funding.bar.models import Archive, TillClosing
    from funding.orgs.models import Site

bar = group(root, "bar", help="the snack/bar: closings, archives, tabs")


async def _sites(session, slug: str | None):
    """The named site, or every site whose till has been used."""
    from funding.bar.models import TillHead
    from funding.orgs.models import Site

    if slug:
        site = await session.scalar(select(Site).where(Site.slug == slug))
        if site is None:
            raise CommandError(f"unknown site {slug!r}")
        return [site]
    return list((await session.scalars(select(Site).join(TillHead, TillHead.site_id == Site.id).order_by(Site.id))).all())


def _total(view: dict) -> str:
    from funding.money import format_plain

    return ", ".join(f"{format_plain(v, c)} {c}" for c, v in view.items()) or "0"


@command(bar, "close-day", help="close a day of the till (today by default), after any open earlier day", roles=STAFF)
@click.option("--site", "slug", help="site slug (default: every site)")
@click.option("--date", help="YYYY-MM-DD")
async def day(ctx: Context, slug: str | None, date: str | None) -> None:
    from funding.bar import closings
    from funding.db import transaction

    day = parse_day(date)
    async with transaction(ctx.sessions) as session:
        made = []
        for site in await _sites(session, slug):
            made += [(site, c) for c in await closings.close_day(session, site, day, closed_by=who())]
    for site, closing in made:
        view = closings.closing_view(closing)
        out(f"{site.slug} {closing.period}: closed — {closing.line_count} lines ({closing.cancel_count} cancelling), "
            f"total {_total(view['period_total'])}, fiscal year {_total(view['fiscal_year_total'])}, "
            f"grand total {_total(view['grand_total'])}")


async def _close_period(ctx: Context, kind: TillClosingKind, period: str, slug: str | None) -> None:
    from funding.bar.closings import close_month, close_year, closing_view
    from funding.db import transaction

    async with transaction(ctx.sessions) as session:
        done: list[tuple[Site, TillClosing, Archive | None]] = []
        for site in await _sites(session, slug):
            if kind == TillClosingKind.MONTH:
                done.append((site, await close_month(session, site, period, closed_by=who()), None))
            else:
                closing, archive = await close_year(session, site, period, closed_by=who())
                done.append((site, closing, archive))
    for site, closing, archived in done:
        out(f"{site.slug} {closing.period}: closed — total {_total(closing_view(closing)['period_total'])}")
        if archived is not None:
            out(f"{site.slug} {archived.period}: archived {archived.line_count} lines as {archived.filename}, "
                f"sha256 {archived.sha256}")


@command(bar, "close-month", help="close a month that is over (YYYY-MM)", roles=STAFF)
@click.argument("period")
@click.option("--site", "slug")
async def month(ctx: Context, period: str, slug: str | None) -> None:
    await _close_period(ctx, TillClosingKind.MONTH, period, slug)


@command(bar, "close-year", help="close a fiscal year that is over (the year it starts) and archive it", roles=STAFF)
@click.argument("period")
@click.option("--site", "slug")
async def year(ctx: Context, period: str, slug: str | None) -> None:
    await _close_period(ctx, TillClosingKind.YEAR, period, slug)


@command(bar, "archive-export", help="write a site's yearly archives (JSON) and their checksums to a directory",
         roles=BOOKS)
@click.option("--site", "slug", required=True)
@click.option("--out", "directory", required=True)
async def archive_export(ctx: Context, slug: str, directory: str) -> None:
    from funding.bar.models import Archive

    target = Path(directory)
    if not await asyncio.to_thread(target.is_dir):
        raise CommandError(f"no such directory: {directory}")
    async with ctx.sessions() as session:
        [site] = await _sites(session, slug)
        archives = (await session.scalars(select(Archive).where(Archive.site_id == site.id).order_by(Archive.id))).all()
    if not archives:
        raise CommandError(f"{site.slug}: no archive yet (they are made when a fiscal year is closed)")
    for archive in archives:
        written = await asyncio.to_thread(_write_archive, target, archive)
        out(f"{written} (sha256 {archive.sha256})")


def _write_archive(target: Path, archive: Archive) -> Path:
    """The archive's document and its checksum file in ``target``; the document's path."""
    document = target / archive.filename
    document.write_text(archive.content, encoding="utf-8")
    (target / f"{archive.filename}.sha256").write_text(
        f"{archive.sha256}  {archive.filename}\nchain {archive.prev_hash} -> {archive.hash}\n", encoding="utf-8")
    return document


@command(bar, "cutoff", help="turn every open tab into a batch now (the worker does it on BAR_CUTOFF_DAY)")
@click.option("--site", "slug")
@click.option("--key", help="cut-off key (default: this month, YYYY-MM)")
async def cutoff(ctx: Context, slug: str | None, key: str | None) -> None:
    from funding.bar.settlement import cut_off, cutoff_key
    from funding.bar.till import local_today

    async with ctx.sessions() as session:
        ids = [s.id for s in await _sites(session, slug)]
    made = await cut_off(ctx.sessions, key=key or cutoff_key(local_today()), site_ids=ids)
    out(f"{len(made)} tab(s) cut off into batches; the worker bills them (or run `funding bar bill`)")


@command(bar, "bill", help="bill the batches that are ready (invoice item, saved card or SEPA mandate, or member's area)", serving=True)
async def bill(ctx: Context) -> None:
    from funding.bar.settlement import billing_job

    async with stripe_gateway(ctx.settings) as gw:
        done = await billing_job(ctx.sessions, ctx.settings, gw)
    out(f"{done} batch(es) billed or marked due")


@command(bar, "settle", help="settle a leaving member's open tab now", serving=True)
@click.option("--site", "slug", required=True)
@click.option("--member", required=True, help="the member's e-mail")
async def settle(ctx: Context, slug: str, member: str) -> None:
    from funding.auth.models import User
    from funding.auth.service import is_member_of, normalise_email
    from funding.bar import settlement
    from funding.db import transaction
    from funding.money import format_plain

    email = normalise_email(member)
    async with transaction(ctx.sessions) as session:
        user = await session.scalar(select(User).where(User.email == email))
        [site] = await _sites(session, slug)
        if user is None or not await is_member_of(session, user.id, site.org_id):
            raise CommandError(f"no member {email} at {site.slug}")
        batch = await settlement.settle_departure(session, site, user.id)
    async with stripe_gateway(ctx.settings) as gw:
        status = await settlement.bill(ctx.sessions, gw, batch.id)
    out(f"{email} at {site.slug}: tab of {format_plain(batch.amount, batch.currency)} {batch.currency} "
        f"in batch {batch.id}, now {status}")


@command(bar, "import-products", help="import a site's products from a CSV file (nom;categorie;prix;tva;actif)",
         roles=STAFF)
@click.argument("file")
@click.option("--site", "slug", required=True)
async def import_products(ctx: Context, file: str, slug: str) -> None:
    from funding.bar.catalog import import_rows, parse_csv
    from funding.bar.till import BarError
    from funding.db import transaction

    content = await read_file(file)
    try:
        rows = parse_csv(content)
        async with transaction(ctx.sessions) as session:
            [site] = await _sites(session, slug)
            added, updated = await import_rows(session, site, rows)
    except BarError as exc:
        raise CommandError(f"{file}: {exc} — nothing was imported") from None
    out(f"{site.slug}: {added} product(s) added, {updated} updated")
