"""``funding export`` (one file) and ``funding exports send|recipients|log``."""

from __future__ import annotations

import getpass
import sys
import time
from pathlib import Path

import click
from sqlalchemy import select

from funding.commands import ADMIN, EXPORTERS, CommandError, Context, acting_as, choice, command, group, out, root
from funding.exports.models import FORMATS, ExportFormat


class ProgressBar:
    """A progress bar on stderr, only when stderr is a terminal (never in logs or pipes)."""

    def __init__(self, total: int, stream=None):
        self.stream = stream or sys.stderr
        self.total, self.done, self.shown = max(total, 1), 0, -1.0
        self.enabled = self.stream.isatty()
        self.started = time.monotonic()

    def __call__(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.shown < 0.1 and self.done < self.total:
            return
        self.shown = now
        width = 30
        filled = min(width, self.done * width // self.total)
        self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {min(100, self.done * 100 // self.total):3d} % "
                          f"{self.done:,}/{self.total:,} lignes".replace(",", "\u202f"))
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def _taker() -> str:
    """Who takes an export, for its log: the ``--as`` person, else ``cli:`` and the operator's login."""
    if acting_as():
        return acting_as()
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli"


@command(root, "export", roles=EXPORTERS,
         help="export the books: FEC, CSV journal, Beancount, hledger, trial balance, general ledger")
@click.option("--format", "fmt", required=True, type=choice(ExportFormat))
@click.option("--from", "start", required=True, help="YYYY-MM-DD")
@click.option("--to", "end", required=True, help="YYYY-MM-DD")
@click.option("--org", "siren", help="SIREN (optional with a single organisation)")
@click.option("--site", "slug", help="only this site's entries")
@click.option("--output", required=True,
              help="file (or directory); for the FEC, the directory that receives <SIREN>FEC<date>.txt")
@click.option("--encoding", default="utf-8", show_default=True,
              help="the FEC's encoding: utf-8, or iso-8859-15 (characters outside it transliterated)")
async def export(ctx: Context, fmt: str, start: str, end: str, siren: str | None, slug: str | None, output: str,
                 encoding: str) -> None:
    from funding.exports import journal
    from funding.exports.service import parse_date, resolve_scope, write_export

    fmt = fec_format(fmt, encoding)
    first, last = parse_date(start, "date de début (--from)"), parse_date(end, "date de fin (--to)")
    async with ctx.sessions() as session:
        scope = await resolve_scope(session, siren=siren, site=slug, start=first, end=last)
    bar = None
    if sys.stderr.isatty():
        async with ctx.engine.connect() as conn:
            bar = ProgressBar(await journal.count_rows(conn, scope))
    try:
        written = await write_export(ctx.engine, ctx.sessions, scope, fmt, Path(output), taken_by=_taker(), progress=bar)
    except OSError as exc:
        raise CommandError(f"écriture impossible : {exc.strerror or exc} ({exc.filename or output})") from None
    finally:
        if bar:
            bar.finish()
    out(f"{written.path}  {written.digest.rows} lignes  {written.digest.size} octets  sha256 {written.digest.hexdigest}")
    for path in written.extra:
        out(str(path))


ENCODINGS = {"utf-8": ExportFormat.FEC, "utf8": ExportFormat.FEC, "iso-8859-15": ExportFormat.FEC_LATIN9,
             "iso8859-15": ExportFormat.FEC_LATIN9, "latin-9": ExportFormat.FEC_LATIN9, "latin9": ExportFormat.FEC_LATIN9}


def fec_format(fmt: str, encoding: str) -> str:
    """``--format fec --encoding iso-8859-15`` is the format ``fec-latin9``; other formats are UTF-8 only."""
    name = encoding.strip().lower()
    if name not in ENCODINGS:
        raise CommandError(f"codage inconnu : {encoding} (utf-8 ou iso-8859-15)")
    if ENCODINGS[name] == ExportFormat.FEC:
        return fmt
    if fmt not in (ExportFormat.FEC, ExportFormat.FEC_LATIN9):
        raise CommandError(f"--encoding {encoding} ne vaut que pour le FEC (--format fec), pas pour {fmt}")
    return ExportFormat.FEC_LATIN9


exports = group(root, "exports", help="sending exports to accountants, recipients, log")


@command(exports, "send", roles=EXPORTERS, serving=True,
         help="email a closed month's exports to each recipient (once per period, recipient and format)")
@click.option("--period", required=True, help="YYYY-MM (a closed month)")
@click.option("--to", help="send to this address only")
@click.option("--formats", help=f"with --to: comma-separated among {', '.join(FORMATS)}")
@click.option("--org", "siren", help="SIREN (default: every organisation)")
async def send(ctx: Context, period: str, to: str | None, formats: str | None, siren: str | None) -> int:
    from funding.db import transaction
    from funding.exports.service import queue_period, sending_status
    from funding.mail.models import EmailStatus
    from funding.mail.service import send_pending
    from funding.orgs.models import Organisation
    from funding.orgs.service import organisation_for

    async with transaction(ctx.sessions) as session:
        orgs = [await organisation_for(session, siren)] if siren else (
            await session.scalars(select(Organisation).order_by(Organisation.id))).all()
        queued = []
        for org in orgs:
            queued += await queue_period(session, ctx.settings, org, period, to=to, formats=formats,
                                         created_by=_taker())
    if not queued:
        raise CommandError("aucun destinataire : ajoutez-en un (funding exports recipients --add ADRESSE) ou utilisez --to")
    if ctx.settings.smtp_url:
        await send_pending(ctx.sessions, ctx.settings)
    async with ctx.sessions() as session:
        status = await sending_status(session, [q.dedupe_key for q in queued])
    failed = 0
    for q in queued:
        email = status.get(q.dedupe_key)
        state = email.status if email else "?"
        error = email.last_error if email else None
        if state == EmailStatus.SENT:
            shown = "envoyé" if q.new else "déjà envoyé"
        elif state == EmailStatus.PENDING and error:
            failed += 1
            shown = f"ÉCHEC (nouvel essai par le worker) : {error}"
        elif state == EmailStatus.PENDING:
            shown = "en file d'attente (pas de SMTP_URL)" if not ctx.settings.smtp_url else "en file d'attente"
        else:
            failed += state in ("failed", "unknown")
            shown = {"failed": f"ÉCHEC DÉFINITIF : {error}", "unknown": "état inconnu : vérifiez avant de renvoyer"}.get(state, state)
        out(f"{period} {q.format:<15} {q.email:<40} {'pièce jointe' if q.mode == 'attachment' else 'lien signé'}  {shown}")
    return 1 if failed else 0


@command(exports, "recipients", roles=ADMIN,
         help="who receives the monthly exports (default: the organisation's accountants)")
@click.option("--org", "siren", help="SIREN")
@click.option("--add", metavar="EMAIL")
@click.option("--name")
@click.option("--formats", help=f"comma-separated among {', '.join(FORMATS)}")
@click.option("--remove", metavar="EMAIL")
async def recipients(ctx: Context, siren: str | None, add: str | None, name: str | None, formats: str | None,
                     remove: str | None) -> None:
    from funding.db import transaction
    from funding.exports.models import ExportRecipient
    from funding.exports.service import add_recipient, recipients_for
    from funding.orgs.service import organisation_for

    async with transaction(ctx.sessions) as session:
        org = await organisation_for(session, siren)
        if add:
            new = await add_recipient(session, org.id, add, name or "", formats or "fec,csv,trial-balance")
            out(f"{add}: {'ajouté' if new else 'mis à jour'}")
        if remove:
            row = await session.scalar(select(ExportRecipient).where(ExportRecipient.org_id == org.id,
                                                                     ExportRecipient.email == remove.strip().lower()))
            if row is None:
                raise CommandError(f"{remove} n'est pas destinataire des exports de {org.siren}")
            row.active = False
            out(f"{remove}: retiré")
        for person in await recipients_for(session, org.id):
            out(f"{person.email:<40} {','.join(person.formats)}  {person.name}")


@command(exports, "log", help="exports taken: who, when, what, SHA-256", roles=EXPORTERS)
@click.option("--limit", type=int, default=50, show_default=True)
async def log(ctx: Context, limit: int) -> None:
    from funding.exports.models import ExportLog

    async with ctx.sessions() as session:
        rows = (await session.scalars(select(ExportLog).order_by(ExportLog.id.desc()).limit(limit))).all()
    for r in rows:
        out(f"{r.taken_at:%Y-%m-%d %H:%M:%S}  {r.taken_by:<35} {r.channel:<6} {r.format:<15} "
            f"{r.start_date}…{r.end_date} {'clos' if r.closed else 'ouvert'}  {r.sha256}")
