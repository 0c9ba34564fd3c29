"""``funding ledger …``: verify the books and their seals, close months, reverse and record
entries, the trial balance and the chart of accounts."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import click

from funding.commands import BOOKS, EXPORTERS, STAFF, CommandError, Context, command, group, out, parse_day, read_file, root, who
from funding.settings import Settings

if TYPE_CHECKING:
    from funding.ledger.annual import AnnualAccounts

ledger = group(root, "ledger", help="the double-entry ledger")


@command(ledger, "verify", help="recompute the chain and the balances; non-zero exit names the first broken entry",
         roles=BOOKS)
@click.option("--org", "siren", help="SIREN")
@click.option("--seals", metavar="FILE|URL",
              help="seals kept elsewhere (the published feed saved earlier, a CSV): the books must pass through each")
async def verify(ctx: Context, siren: str | None, seals: str | None) -> int:
    from sqlalchemy import select

    from funding.ledger.seals import Keyring, SealError, read_kept
    from funding.ledger.verify import verify_org
    from funding.orgs.models import Organisation
    from funding.orgs.service import organisation_for

    try:
        kept = await asyncio.to_thread(read_kept, seals) if seals else None
    except SealError as exc:
        raise CommandError(f"--seals: {exc}") from None
    async with ctx.sessions() as session:
        orgs = [await organisation_for(session, siren)] if siren else (
            await session.scalars(select(Organisation).order_by(Organisation.id))
        ).all()
    if not orgs:
        raise CommandError("no organisation: nothing to verify")
    broken = 0
    if kept is not None:
        if not kept:
            raise CommandError(f"--seals: {seals} holds no seal")
        strangers = sorted({s.siren for s in kept} - {o.siren for o in orgs})
        if strangers and not siren:
            broken += 1
            out(f"BROKEN — the seals name organisation(s) {', '.join(strangers)}, which this database does not hold")
    keyring = Keyring.from_settings(ctx.settings)
    async with ctx.engine.connect() as conn:
        for org in orgs:
            report = await verify_org(conn, org.id, keyring=keyring, kept=kept)
            if report.ok:
                more = "".join(f", {n} {what}" for what, n in report.counts.items())
                notes = "".join(f" ({note})" for note in sorted(report.notes))
                out(f"{org.siren} {org.name}: OK — {report.entries} entries, {report.postings} postings, "
                    f"{report.closings} closings{more}; chain, balances and seals verified{notes}")
            else:
                broken += 1
                out(f"{org.siren} {org.name}: BROKEN — first problem: {report.problems[0]}")
                for problem in report.problems[1:10]:
                    out(f"  also: {problem}")
    return 1 if broken else 0


@command(ledger, "seal-key", help="make a new Ed25519 key for LEDGER_SEAL_KEY and print its public half")
def seal_key(settings: Settings) -> None:
    """A key for LEDGER_SEAL_KEY (keep it in the environment, never in the database), and its public
    half (publish it: it is what every copy of the seals is checked against)."""
    from funding.ledger.seals import Keyring
    from funding.settings import generate_seal_key

    key = generate_seal_key()
    keyring = Keyring.from_settings(settings.with_(seal_key=key, seal_public_keys=()))
    out(f"LEDGER_SEAL_KEY={key}")
    out(f"# public key {keyring.key_id}: {keyring.public_keys()[keyring.key_id]}")
    out("# when you replace a key, add the old public key to LEDGER_SEAL_PUBLIC_KEYS so its seals stay trusted")


@command(ledger, "close", help="close a month (YYYY-MM)", roles=STAFF)
@click.argument("period")
@click.option("--org", "siren", help="SIREN")
async def close(ctx: Context, period: str, siren: str | None) -> None:
    from funding.db import transaction
    from funding.ledger.service import close_month
    from funding.orgs.service import organisation_for

    async with transaction(ctx.sessions) as session:
        org = await organisation_for(session, siren)
        closing = await close_month(session, org.id, period, closed_by=who())
    out(f"{org.siren}: {closing.period} closed — {closing.entry_count} entries, grand total {closing.grand_total}")


@command(ledger, "close-year", help="close a fiscal year (YYYY, the year it starts in) after its twelve months",
         roles=STAFF)
@click.argument("year")
@click.option("--org", "siren", help="SIREN")
async def close_year(ctx: Context, year: str, siren: str | None) -> None:
    """Store the year's closing, post the next year's à-nouveaux (journal AN) and seal it."""
    import datetime as dt

    from funding.db import transaction
    from funding.ledger.service import close_year as close
    from funding.money import format_money
    from funding.orgs.service import organisation_for

    async with transaction(ctx.sessions) as session:
        org = await organisation_for(session, siren)
        done = await close(session, org.id, year, closed_by=who())
    results = ", ".join(("excédent " if amount >= 0 else "déficit ") + format_money(abs(amount), cur)
                        for cur, amount in sorted(done.result.items())) or "aucun"
    out(f"{org.siren}: exercice {done.closing.period} clos ({done.closing.start_date} – {done.closing.end_date}), "
        f"{done.closing.entry_count} entries, résultat {results}; {len(done.openings)} à-nouveaux entries "
        f"dated {done.closing.end_date + dt.timedelta(days=1)}")


@command(ledger, "reverse", help="cancel an entry by a reversing entry", roles=STAFF)
@click.argument("number", type=int)
@click.option("--reason", required=True)
@click.option("--org", "siren", help="SIREN")
async def reverse(ctx: Context, number: int, reason: str, siren: str | None) -> None:
    from funding.db import transaction
    from funding.ledger import service
    from funding.orgs.service import organisation_for

    async with transaction(ctx.sessions) as session:
        org = await organisation_for(session, siren)
        posted = await service.reverse(session, org.id, number, reason=reason, created_by=who())
    out(f"entry {number} reversed by entry {posted.number}")


@command(ledger, "record", help="record money outside Stripe (grants, patronage, sponsoring, transfers) and contributions "
                                "in kind (volunteering, goods lent or given)", roles=STAFF)
@click.argument("kind", required=False)
@click.option("--file", "csv_file", help="a CSV file of operations (header: kind,site,date,amount,...)")
@click.option("--site")
@click.option("--date")
@click.option("--amount", help="e.g. 1234,56")
@click.option("--currency", default="EUR", show_default=True)
@click.option("--label")
@click.option("--piece", "piece_ref", help="piece reference (bank statement, receipt)")
@click.option("--funder", help="funder, patron or sponsor")
@click.option("--funder-siret")
@click.option("--reference", help="grant decision or agreement reference (expense, asset: the grant it spends)")
@click.option("--object", help="what the grant is for")
@click.option("--debit", help="transfer: debited account; expense: its charge account; asset: its 2x account")
@click.option("--credit", help="transfer: credited account")
@click.option("--source", help="transfer: public, private, crowdfunding, self or internal")
@click.option("--vat-rate", help="sponsoring: 20, 10, 5.5 or 0")
@click.option("--hours", help="volunteering: hours given, e.g. 12,5")
@click.option("--hourly-value", help="volunteering: value of one hour, e.g. 11,88")
@click.option("--nature", help="grant-notified: operating (default), multi-year, restricted or investment")
@click.option("--years", help="multi-year grant: the fiscal years it covers (2 or more)")
@click.option("--life", help="asset: useful life in years (straight-line depreciation)")
async def record(ctx: Context, kind: str | None, csv_file: str | None, currency: str, **fields: str | None) -> None:
    """``kind`` (grant-notified, grant-paid, patronage, sponsoring, transfer, expense, asset, volunteering,
    goods-lent, goods-given) and its fields, or ``--file``.
    An expense (``--debit`` a charge account) or an asset (``--debit`` 2181, 2183 or 2184, ``--life``) may name
    the grant it spends (``--reference``).
    The fields' options are named after those of :class:`funding.ledger.records.Record`."""
    from funding.db import transaction
    from funding.ledger import records

    if csv_file:
        content = await read_file(csv_file)
        try:
            batch = records.parse_csv(content)
        except records.RecordError as exc:
            raise CommandError(f"{csv_file}: {exc}") from None
    else:
        if not kind:
            raise CommandError("give the kind of operation (" + ", ".join(records.KINDS) + ") or --file FILE.csv")
        if not fields["date"] or not (fields["amount"] or fields["hours"]):
            raise CommandError("--date and --amount are required (for volunteering: --hours and --hourly-value)")
        batch = [records.Record.of({"kind": kind, "currency": currency, **{name: value or "" for name, value in fields.items()}})]
    try:
        async with transaction(ctx.sessions) as session:
            outcomes = await records.record_many(session, batch, created_by=who())
    except records.RecordError as exc:
        raise CommandError(f"{exc} — nothing was recorded") from None
    for outcome in outcomes:
        state = "recorded as" if outcome.entry.created else "already recorded as"
        out(f"{outcome.record.kind} {outcome.record.amount} {outcome.record.currency}: {state} entry {outcome.entry.number}")


@command(ledger, "trial-balance", help="debit, credit and balance per account", roles=BOOKS)
@click.option("--org", "siren", help="SIREN (default: the whole network)")
@click.option("--site", "slug")
@click.option("--from", "start")
@click.option("--to", "end")
async def balance(ctx: Context, siren: str | None, slug: str | None, start: str | None, end: str | None) -> None:
    from funding.ledger.service import totals_by_currency, trial_balance
    from funding.money import format_plain
    from funding.orgs.service import organisation_for, site_by_slug

    async with ctx.sessions() as session:
        org = await organisation_for(session, siren) if siren else None
        site = await site_by_slug(session, slug) if slug else None
        rows = await trial_balance(session, org_id=org.id if org else None, site_id=site.id if site else None,
                                   start=parse_day(start), end=parse_day(end), openings=True)
    out(f"{'compte':<10} {'intitulé':<45} {'report':>14} {'débit':>14} {'crédit':>14} {'solde':>14}")
    for r in rows:
        out(f"{r.account:<10} {r.label[:45]:<45} {format_plain(r.opening, r.currency):>14} {format_plain(r.debit, r.currency):>14} "
            f"{format_plain(r.credit, r.currency):>14} {format_plain(r.balance, r.currency):>14} {r.currency}")
    for cur, (d, c) in totals_by_currency(rows).items():
        out(f"{'TOTAL':<71} {format_plain(d, cur):>14} {format_plain(c, cur):>14} {format_plain(d - c, cur):>14} {cur}")


@command(ledger, "accounts", help="list the chart of accounts, or --add NUMBER LABEL", roles=STAFF)
@click.option("--org", "siren", help="SIREN")
@click.option("--add", nargs=2, metavar="NUMBER LABEL")
async def accounts(ctx: Context, siren: str | None, add: tuple[str, str] | None) -> None:
    from sqlalchemy import select

    from funding.db import transaction
    from funding.ledger.chart import check_account_number
    from funding.ledger.models import Account
    from funding.orgs.service import organisation_for

    async with transaction(ctx.sessions) as session:
        org = await organisation_for(session, siren)
        if add:
            number = check_account_number(add[0])
            if await session.scalar(select(Account.id).where(Account.org_id == org.id, Account.number == number)):
                raise CommandError(f"account {number} already exists")
            session.add(Account(org_id=org.id, number=number, label=add[1]))
            out(f"account {number} {add[1]} added")
            return
        for acc in (await session.scalars(select(Account).where(Account.org_id == org.id).order_by(Account.number))).all():
            out(f"{acc.number:<10} {acc.label}{'' if acc.active else ' (inactive)'}")


@command(ledger, "assets", help="the fixed-asset register (with depreciation booked so far), or --add one bought",
         roles=STAFF)
@click.option("--org", "siren", help="SIREN")
@click.option("--add", "label", metavar="LABEL", help="record an asset bought (paid from 512) under this label")
@click.option("--site")
@click.option("--date", help="acquisition date")
@click.option("--cost", help="e.g. 12000,00")
@click.option("--account", help="2181, 2183 or 2184")
@click.option("--life", help="useful life in years")
@click.option("--grant", "reference", help="the investment grant that funds it (its reference)")
@click.option("--piece", "piece_ref", help="the invoice's reference")
async def assets(ctx: Context, siren: str | None, label: str | None, site: str | None, date: str | None,
                 cost: str | None, account: str | None, life: str | None, reference: str | None,
                 piece_ref: str | None) -> None:
    """Straight-line depreciation, prorata temporis in days the first year (funding.ledger.yearend),
    booked by the year-end entries when the fiscal year's last month is closed."""
    from sqlalchemy import select

    from funding.db import transaction
    from funding.ledger import records
    from funding.ledger.chart import DEPRECIATION_ACCOUNTS
    from funding.ledger.models import FixedAsset, Grant
    from funding.ledger.yearend import asset_balance
    from funding.money import format_plain
    from funding.orgs.models import Site
    from funding.orgs.service import organisation_for

    if label is not None:
        if not (site and date and cost and account and life):
            raise CommandError("--add needs --site, --date, --cost, --account and --life")
        rec = records.Record("asset", date, cost, site=site, label=label, debit=account, life=life,
                             reference=reference or "", piece_ref=piece_ref or "")
        try:
            async with transaction(ctx.sessions) as session:
                (outcome,) = await records.record_many(session, [rec], created_by=who())
        except records.RecordError as exc:
            raise CommandError(f"{exc} — nothing was recorded") from None
        state = "recorded as" if outcome.entry.created else "already recorded as"
        out(f"asset {label}: {state} entry {outcome.entry.number}")
        return
    async with ctx.sessions() as session:
        org = await organisation_for(session, siren)
        rows = (await session.execute(
            select(FixedAsset, Site.slug, Grant.reference).join(Site, Site.id == FixedAsset.site_id)
            .outerjoin(Grant, Grant.id == FixedAsset.grant_id).where(FixedAsset.org_id == org.id)
            .order_by(FixedAsset.acquired_on, FixedAsset.id)
        )).all()
        out(f"{'n°':<5} {'lieu':<14} {'compte':<7} {'acquis le':<10} {'coût':>12} {'ans':>3} {'amorti':>12} "
            f"{'net':>12}  {'subvention':<16} libellé")
        for asset, slug, grant in rows:
            done = -await asset_balance(session, asset, DEPRECIATION_ACCOUNTS[asset.account_number])
            out(f"{asset.id:<5} {slug[:14]:<14} {asset.account_number:<7} {asset.acquired_on.isoformat():<10} "
                f"{format_plain(asset.cost, asset.currency):>12} {asset.useful_life:>3} "
                f"{format_plain(done, asset.currency):>12} {format_plain(asset.cost - done, asset.currency):>12}  "
                f"{(grant or '-')[:16]:<16} {asset.label}")


@command(ledger, "grant-budget", help="set a grant's action budget from a CSV (categorie;libelle;montant); show it",
         roles=STAFF)
@click.argument("reference")
@click.option("--file", "csv_file", help="CSV: categorie (60…69, 86, 70…79, 87);libelle;montant — replaces the budget")
@click.option("--org", "siren", help="SIREN")
async def grant_budget(ctx: Context, reference: str, csv_file: str | None, siren: str | None) -> None:
    from funding.db import transaction
    from funding.ledger import grant_report as gr
    from funding.money import format_plain
    from funding.orgs.service import organisation_for

    async with transaction(ctx.sessions) as session:
        org = await organisation_for(session, siren) if siren else None
        grant = await gr.grant_by_reference(session, reference, org.id if org else None)
        if csv_file:
            content = await read_file(csv_file)
            try:
                lines = gr.parse_budget(content, grant.currency)
            except gr.GrantReportError as exc:
                raise CommandError(f"{csv_file} : {exc} — rien n'a été modifié") from None
            await gr.set_budget(session, grant, lines, created_by=who())
        rows = await gr.budget_of(session, grant)
    for row in rows:
        out(f"{row.category} {gr.kind_of(row.category):<8} {gr.CATEGORIES[row.category][:40]:<40} {row.label[:30]:<30} "
            f"{format_plain(row.amount, row.currency):>14} {row.currency}")
    if not rows:
        out(f"{reference} : pas de budget (funding ledger grant-budget {reference} --file budget.csv)")


@command(ledger, "grant-report", help="a grant's financial report (cerfa 15059): budget against actual, received",
         roles=BOOKS)
@click.argument("reference")
@click.option("--year", type=int, help="the fiscal year starting in YEAR (default: the convention's year)")
@click.option("--format", "fmt", type=click.Choice(["text", "csv", "pdf"]), default="text", show_default=True)
@click.option("--output", help="file to write (csv: default stdout; pdf: required)")
@click.option("--basis", type=click.Choice(["auto", "grant", "site"]), default="auto", show_default=True,
              help="actual from entries tagged with the grant, or from every entry of its site (auto: tagged if any charge is)")
@click.option("--org", "siren", help="SIREN")
async def grant_report_command(ctx: Context, reference: str, year: int | None, fmt: str, output: str | None, basis: str,
                               siren: str | None) -> None:
    from pathlib import Path

    from funding.ledger import grant_report as gr
    from funding.money import format_plain
    from funding.orgs.service import organisation_for

    if fmt == "pdf" and not output:
        raise CommandError("--format pdf demande --output FICHIER.pdf")
    if output and not Path(output).parent.is_dir():
        raise CommandError(f"répertoire introuvable : {Path(output).parent}")
    async with ctx.sessions() as session:
        org = await organisation_for(session, siren) if siren else None
        grant = await gr.grant_by_reference(session, reference, org.id if org else None)
        report = await gr.grant_report(session, grant, year=year, basis=basis)
    if fmt in ("csv", "pdf"):
        data = gr.report_csv(report) if fmt == "csv" else await asyncio.to_thread(gr.report_pdf, report)
        if output:
            await asyncio.to_thread(Path(output).write_bytes, data)
            out(f"{output}  {len(data)} octets")
        else:
            click.echo(data.decode("utf-8-sig"), nl=False)
        return
    cur = report.currency
    out(f"{report.org_name} — subvention {grant.reference} ({grant.funder_name}) — du {report.start:%d/%m/%Y} au {report.end:%d/%m/%Y}")
    out(f"réalisé : {report.basis_text}")
    out(f"{'':3} {'poste':<48} {'prévisionnel':>14} {'réalisé':>14} {'écart %':>8}")
    for kind in ("charge", "produit"):
        for row in [*report.section(kind), report.total(kind)]:
            name = f"{row.label}{' — ' + row.detail if row.detail else ''}"
            out(f"{row.category:<3} {name[:48]:<48} {format_plain(row.budget, cur):>14} {format_plain(row.actual, cur):>14} "
                f"{gr.pct_text(row.gap_pct):>8}")
    result = report.result
    out(f"{'':3} {result.label:<48} {format_plain(result.budget, cur):>14} {format_plain(result.actual, cur):>14}")
    out(f"subvention accordée {format_plain(grant.amount, cur)}, reçue sur la période {format_plain(report.received_in_period, cur)}, "
        f"depuis la convention {format_plain(report.received_to_date, cur)}, reste {format_plain(report.remaining, cur)} {cur}")


@command(ledger, "annual-accounts",
         help="compte de résultat and bilan of a fiscal year (ANC 2018-06), the year before beside; text, CSV or PDF",
         roles=EXPORTERS)
@click.argument("year")
@click.option("--org", "siren", help="SIREN (default: the only organisation, or the site's)")
@click.option("--site", "slug", help="a site's analytic view")
@click.option("--format", "fmt", type=click.Choice(["text", "csv", "pdf"]), default="text", show_default=True)
@click.option("--output", help="file to write (required for pdf; csv and text go to stdout without it)")
async def annual_accounts(ctx: Context, year: str, siren: str | None, slug: str | None, fmt: str, output: str | None) -> None:
    """YEAR names the fiscal year by the year it starts in (2026 = the year starting in 2026)."""
    from pathlib import Path

    from funding.ledger import annual
    from funding.money import format_plain
    from funding.orgs.models import Organisation
    from funding.orgs.service import organisation_for, site_by_slug

    if fmt == "pdf" and not output:
        raise CommandError("--format pdf needs --output FILE.pdf")
    number = annual.parse_year(year)
    async with ctx.sessions() as session:
        site = await site_by_slug(session, slug) if slug else None
        if site is not None and not siren:
            org = await session.get(Organisation, site.org_id)
            if org is None:
                raise CommandError(f"site {slug}: organisation not found")
        else:
            org = await organisation_for(session, siren)
        if site is not None and site.org_id != org.id:
            raise CommandError(f"site {slug} is not one of {org.siren}'s sites")
        acc = await annual.annual_accounts(session, org_id=org.id, year=number, site_id=site.id if site else None)
    if fmt == "pdf":
        data = await asyncio.to_thread(annual.annual_pdf, acc)
    elif fmt == "csv":
        data = annual.annual_csv(acc)
    else:
        data = annual_text(acc).encode()
    if output:
        await asyncio.to_thread(Path(output).write_bytes, data)
        out(f"{acc.siren}{' ' + acc.site if acc.site else ''}: annual accounts {acc.title} written to {output} "
            f"(result {format_plain(acc.result[0], acc.currency)} {acc.currency}, balance sheet total "
            f"{format_plain(acc.total_actif[0], acc.currency)} {acc.currency})")
    else:
        click.echo(data.decode("utf-8-sig"), nl=False)


def annual_text(acc: AnnualAccounts) -> str:
    """The accounts as text for a terminal: one line per row, N and N-1 in columns."""
    from funding.money import format_plain

    lines = [f"{acc.org_name} — SIREN {acc.siren}{' — ' + (acc.site_name or '') if acc.site else ''}",
             f"Comptes annuels {acc.title} : du {acc.start.isoformat()} au {acc.end.isoformat()} ({acc.currency})"]
    for title, rows in (("COMPTE DE RÉSULTAT", acc.income), ("CONTRIBUTIONS VOLONTAIRES EN NATURE", acc.in_kind),
                        ("BILAN — ACTIF", acc.actif), ("BILAN — PASSIF", acc.passif), ("FONDS DÉDIÉS", acc.dedicated),
                        ("PRODUITS PAR ORIGINE DES FONDS", acc.sources)):
        if not rows:
            continue
        lines += ["", f"{title:<62} {'N':>16} {'N-1':>16}"]
        for r in rows:
            indent = "  " if r.kind == "line" else ""
            lines.append(f"{(indent + r.label)[:62]:<62} {format_plain(r.n, acc.currency):>16} {format_plain(r.n1, acc.currency):>16}")
    if acc.other_currencies:
        lines += ["", f"écritures en {', '.join(acc.other_currencies)} non reprises (comptes établis en {acc.currency})"]
    return "\n".join(lines) + "\n"
