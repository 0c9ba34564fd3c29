"""``funding export`` (one file) and ``funding exports send|recipients|log``."""

from __future__ import annotations

import getpass
import sys
import time
from pathlib import Path

from sqlalchemy import select

from funding.exports.models import FORMATS


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


def _who() -> str:
    from funding.cli import _actor

    if _actor.get():
        return _actor.get()
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli"


async def cmd_export(args, ctx) -> int:
    from funding.cli import CommandError, _out
    from funding.exports import journal
    from funding.exports.journal import ExportError
    from funding.exports.service import parse_date, resolve_scope, write_export

    try:
        start, end = parse_date(args.start, "date de début (--from)"), parse_date(args.end, "date de fin (--to)")
        async with ctx.sessions() as session:
            scope = await resolve_scope(session, siren=args.org, site=args.site, start=start, end=end)
        bar = None
        if sys.stderr.isatty():
            async with ctx.engine.connect() as conn:
                bar = ProgressBar(await journal.count_rows(conn, scope))
        try:
            written = await write_export(ctx.engine, ctx.sessions, scope, args.format, Path(args.output), taken_by=_who(),
                                         progress=bar)
        finally:
            if bar:
                bar.finish()
    except ExportError as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:
        raise CommandError(f"écriture impossible : {exc.strerror or exc} ({exc.filename or args.output})") from None
    _out(f"{written.path}  {written.digest.rows} lignes  {written.digest.size} octets  sha256 {written.digest.hexdigest}")
    for path in written.extra:
        _out(str(path))
    return 0


async def cmd_send(args, ctx) -> int:
    from funding.cli import CommandError, _out
    from funding.db import transaction
    from funding.exports.journal import ExportError
    from funding.exports.service import queue_period, sending_status
    from funding.mail.service import send_pending
    from funding.orgs.models import Organisation
    from funding.orgs.service import OrgError, organisation_for

    try:
        async with transaction(ctx.sessions) as session:
            orgs = [await organisation_for(session, args.org)] if args.org else (
                await session.scalars(select(Organisation).order_by(Organisation.id))).all()
            queued = []
            for org in orgs:
                queued += await queue_period(session, ctx.settings, org, args.period, to=args.to, formats=args.formats,
                                             created_by=_who())
    except (ExportError, OrgError) as exc:
        raise CommandError(str(exc)) from None
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
        if state == "sent":
            shown = "envoyé" if q.new else "déjà envoyé"
        elif state == "pending" and email.last_error:
            failed += 1
            shown = f"ÉCHEC (nouvel essai par le worker) : {email.last_error}"
        elif state == "pending":
            shown = "en file d'attente (pas de SMTP_URL)" if not ctx.settings.smtp_url else "en file d'attente"
        else:
            failed += state in ("failed", "unknown")
            shown = {"failed": f"ÉCHEC DÉFINITIF : {email.last_error}", "unknown": "état inconnu : vérifiez avant de renvoyer"}.get(state, state)
        _out(f"{args.period} {q.format:<15} {q.email:<40} {'pièce jointe' if q.mode == 'attachment' else 'lien signé'}  {shown}")
    return 1 if failed else 0


async def cmd_recipients(args, ctx) -> int:
    from funding.cli import CommandError, _out
    from funding.db import transaction
    from funding.exports.journal import ExportError
    from funding.exports.models import ExportRecipient
    from funding.exports.service import add_recipient, recipients_for
    from funding.orgs.service import OrgError, organisation_for

    try:
        async with transaction(ctx.sessions) as session:
            org = await organisation_for(session, args.org)
            if args.add:
                new = await add_recipient(session, org.id, args.add, args.name or "", args.formats or "fec,csv,trial-balance")
                _out(f"{args.add}: {'ajouté' if new else 'mis à jour'}")
            if args.remove:
                row = await session.scalar(select(ExportRecipient).where(ExportRecipient.org_id == org.id,
                                                                         ExportRecipient.email == args.remove.strip().lower()))
                if row is None:
                    raise CommandError(f"{args.remove} n'est pas destinataire des exports de {org.siren}")
                row.active = False
                _out(f"{args.remove}: retiré")
            for person in await recipients_for(session, org.id):
                _out(f"{person.email:<40} {','.join(person.formats)}  {person.name}")
    except (ExportError, OrgError) as exc:
        raise CommandError(str(exc)) from None
    return 0


async def cmd_log(args, ctx) -> int:
    from funding.cli import _out
    from funding.exports.models import ExportLog

    async with ctx.sessions() as session:
        rows = (await session.scalars(select(ExportLog).order_by(ExportLog.id.desc()).limit(args.limit))).all()
    for r in rows:
        _out(f"{r.taken_at:%Y-%m-%d %H:%M:%S}  {r.taken_by:<35} {r.channel:<6} {r.format:<15} "
             f"{r.start_date}…{r.end_date} {'clos' if r.closed else 'ouvert'}  {r.sha256}")
    return 0


def register(sub) -> None:
    ex = sub.add_parser("export", help="export the books: FEC, CSV journal, Beancount, hledger, trial balance, general ledger")
    ex.add_argument("--format", required=True, choices=FORMATS)
    ex.add_argument("--from", dest="start", required=True, help="YYYY-MM-DD")
    ex.add_argument("--to", dest="end", required=True, help="YYYY-MM-DD")
    ex.add_argument("--org", help="SIREN (optional with a single organisation)")
    ex.add_argument("--site", help="only this site's entries")
    ex.add_argument("--output", required=True, help="file (or directory); for the FEC, the directory that receives <SIREN>FEC<date>.txt")
    ex.set_defaults(run=cmd_export)

    exs = sub.add_parser("exports", help="sending exports to accountants, recipients, log").add_subparsers(
        dest="exports_command", required=True)
    se = exs.add_parser("send", help="email a closed month's exports to each recipient (once per period, recipient and format)")
    se.add_argument("--period", required=True, help="YYYY-MM (a closed month)")
    se.add_argument("--to", help="send to this address only")
    se.add_argument("--formats", help=f"with --to: comma-separated among {', '.join(FORMATS)}")
    se.add_argument("--org", help="SIREN (default: every organisation)")
    se.set_defaults(run=cmd_send, serving=True)
    rc = exs.add_parser("recipients", help="who receives the monthly exports (default: the organisation's accountants)")
    rc.add_argument("--org", help="SIREN")
    rc.add_argument("--add", metavar="EMAIL")
    rc.add_argument("--name")
    rc.add_argument("--formats", help=f"comma-separated among {', '.join(FORMATS)}")
    rc.add_argument("--remove", metavar="EMAIL")
    rc.set_defaults(run=cmd_recipients)
    lg = exs.add_parser("log", help="exports taken: who, when, what, SHA-256")
    lg.add_argument("--limit", type=int, default=50)
    lg.set_defaults(run=cmd_log)
