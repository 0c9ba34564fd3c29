"""``funding ledger verify`` for the till: recompute each site's chain of sale lines, its
closings (chain, hash and figures) and its archives (chain and file checksum); and what each
tab says it owes (``bar_tabs``, kept by triggers) against its lines no batch claimed.

Plugged into the ledger's verification as the domain part ``integrity``: a line, closing
or archive altered behind the application's back (triggers off, a restored backup) no
longer matches its stored hash, and the organisation's verification fails naming it.
"""

from __future__ import annotations

from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from funding.bar.canonical import archive_hash, closing_hash, line_document, sha256
from funding.bar.figures import day_bounds, fiscal_year_start, period_figures
from funding.bar.models import GENESIS_HASH, Archive, BatchLine, SaleLine, Tab, TillClosing, TillClosingKind, TillHead
from funding.ledger.canonical import chain_hash
from funding.orgs.models import Organisation, Site

FIGURES = ("line_count", "cancel_count", "first_seq", "last_seq", "totals", "by_mode", "cancellations", "period_total",
           "fiscal_year_total", "grand_total")


async def verify(conn: AsyncConnection, org_id: int, report) -> None:
    start_month = await conn.scalar(select(Organisation.fiscal_year_start_month).where(Organisation.id == org_id)) or 1
    heads = (await conn.execute(select(TillHead.__table__, Site.slug).join(Site, Site.id == TillHead.site_id)
                                .where(TillHead.org_id == org_id).order_by(TillHead.site_id))).all()
    for head in heads:
        await _lines(conn, head, report)
        await _closings(conn, head, report, start_month)
        await _archives(conn, head, report)
    await _tabs(conn, org_id, report)


async def _tabs(conn, org_id: int, report) -> None:
    """What each tab says it owes (bar_tabs, kept by triggers) against its lines no batch claimed."""
    claimed = exists().where(BatchLine.sale_line_id == SaleLine.id)
    open_ = (await conn.execute(
        select(SaleLine.site_id, SaleLine.member_id, func.sum(SaleLine.amount))
        .where(SaleLine.org_id == org_id, SaleLine.member_id.is_not(None), ~claimed)
        .group_by(SaleLine.site_id, SaleLine.member_id))).all()
    owed = {(site, member): int(total) for site, member, total in open_}
    kept = {(row.site_id, row.member_id): row.owed
            for row in (await conn.execute(select(Tab.__table__).where(Tab.org_id == org_id))).all()}
    slugs = {row.id: row.slug for row in (await conn.execute(select(Site.id, Site.slug).where(Site.org_id == org_id))).all()}
    for site, member in sorted(set(owed) | set(kept)):
        if owed.get((site, member), 0) != kept.get((site, member), 0):
            report.problem(f"bar {slugs.get(site, site)} tab of member {member}: says {kept.get((site, member), 0)} owed, "
                           f"its unbilled lines come to {owed.get((site, member), 0)}")


async def _lines(conn, head, report, *, batch: int = 10_000) -> None:
    seqs: dict[int, int] = {}
    prev, expected = GENESIS_HASH, 1
    result = await conn.stream(select(SaleLine.__table__).where(SaleLine.site_id == head.site_id).order_by(SaleLine.seq))
    async for rows in result.partitions(batch):
        for line in rows:
            where = f"bar {head.slug} sale line {line.seq}"
            if line.seq != expected:
                report.problem(f"{where}: numbering gap, expected {expected}")
            if line.prev_hash != prev:
                report.problem(f"{where}: not chained to sale line {line.seq - 1}")
            cancels = seqs.get(line.cancels_id) if line.cancels_id is not None else None
            if line.cancels_id is not None and cancels is None:
                report.problem(f"{where}: cancels a line that is not before it")
            if chain_hash(line.prev_hash, line_document(line, cancels)) != line.hash:
                report.problem(f"{where}: hash mismatch, the sale line was altered after it was recorded")
            seqs[line.id] = line.seq
            prev, expected = line.hash, line.seq + 1
    report.counts["bar sale lines"] = report.counts.get("bar sale lines", 0) + len(seqs)
    if head.last_seq != expected - 1 or head.last_hash != prev:
        report.problem(f"bar {head.slug}: till head says {head.last_seq} lines, the chain has {expected - 1}"
                       if head.last_seq != expected - 1 else f"bar {head.slug}: till head hash differs from the last line's")


async def _closings(conn, head, report, start_month: int) -> None:
    prev = GENESIS_HASH
    closings = (await conn.execute(select(TillClosing.__table__).where(TillClosing.site_id == head.site_id)
                                   .order_by(TillClosing.id))).all()
    last_of_day: dict = {}
    for closing in closings:
        where = f"bar {head.slug} closing {closing.kind} {closing.period}"
        after, upto = day_bounds(closing, last_of_day.get(closing.start_date))
        if closing.kind == TillClosingKind.DAY:
            last_of_day[closing.start_date] = closing
        if closing.prev_hash != prev:
            report.problem(f"{where}: not chained to the previous closing")
        if closing_hash(closing) != closing.hash:
            report.problem(f"{where}: hash mismatch, the closing was altered")
        figures = await period_figures(conn, head.site_id, closing.start_date, closing.end_date,
                                       fy_start=fiscal_year_start(closing.end_date, start_month),
                                       with_cancellations=closing.kind == TillClosingKind.DAY, after=after, upto=upto)
        differ = [f for f in FIGURES if figures[f] != getattr(closing, f)]
        if differ:
            report.problem(f"{where}: {', '.join(differ)} differ from the sale lines of the period")
        prev = closing.hash
    report.counts["bar closings"] = report.counts.get("bar closings", 0) + len(closings)
    if head.last_closing_hash != prev:
        report.problem(f"bar {head.slug}: till head's closing hash differs from the last closing")


async def _archives(conn, head, report) -> None:
    prev = GENESIS_HASH
    archives = (await conn.execute(select(Archive.__table__).where(Archive.site_id == head.site_id)
                                   .order_by(Archive.id))).all()
    for archive in archives:
        where = f"bar {head.slug} archive {archive.period}"
        if archive.prev_hash != prev:
            report.problem(f"{where}: not chained to the previous archive")
        if sha256(archive.content.encode()) != archive.sha256:
            report.problem(f"{where}: the archived file does not match its checksum")
        if archive_hash(archive) != archive.hash:
            report.problem(f"{where}: hash mismatch, the archive record was altered")
        prev = archive.hash
    report.counts["bar archives"] = report.counts.get("bar archives", 0) + len(archives)
    if head.last_archive_hash != prev:
        report.problem(f"bar {head.slug}: till head's archive hash differs from the last archive")
