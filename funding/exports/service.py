"""Exports: choose what to export, stream it with its SHA-256, log who took it, write it
to disk, and send a closed month's exports to the accountants.

Every export taken (page, command line, email, signed link) is logged with the hash of
the exact bytes handed over. A closed period's export is byte-for-byte reproducible,
which is what lets an email carry a *reference* to its attachment (rebuilt and checked
against the recorded hash when the email is sent) and a signed link serve the same file
weeks later.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import os
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
)

from funding.auth.models import Membership, User
from funding.db import insert_ignore, utcnow
from funding.exports import books, journal, textledgers
from funding.exports.journal import ExportError, Scope
from funding.exports.models import FORMATS, Channel, ExportFormat, ExportLog, ExportRecipient, ExportRun
from funding.i18n import N_
from funding.i18n import gettext as _
from funding.ledger.models import Closing, LedgerHead, Seal, SealKind
from funding.ledger.seals import seal_text
from funding.ledger.service import LedgerError, fiscal_year_start, month_bounds
from funding.mail.compose import recipient_locale, render
from funding.mail.models import Email
from funding.mail.service import AttachmentError, enqueue, register_attachment
from funding.orgs.models import Organisation, Site
from funding.orgs.service import OrgError, organisation_for, site_by_slug
from funding.security import TokenError, sign, unsign
from funding.settings import Settings

ATTACHMENT_LIMIT = 5 * 1024 * 1024  # above this, the email carries a signed link instead
LINK_MAX_AGE = 30 * 24 * 3600
LINK_PURPOSE = "export-link"
DEFAULT_FORMATS = (ExportFormat.FEC, ExportFormat.CSV, ExportFormat.TRIAL_BALANCE)
FEC_FORMATS = (ExportFormat.FEC, ExportFormat.FEC_LATIN9)
# The written description of each FEC (not an export of its own: made from the FEC's digest).
DESCRIPTIONS = {"fec-description": ExportFormat.FEC, "fec-latin9-description": ExportFormat.FEC_LATIN9}
MEDIA_TYPES = {
    "fec": "text/plain; charset=utf-8",
    "fec-latin9": "text/plain; charset=iso-8859-15",
    "fec-description": "text/plain; charset=utf-8",
    "fec-latin9-description": "text/plain; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "beancount": "text/plain; charset=utf-8",
    "hledger": "text/plain; charset=utf-8",
    "trial-balance": "text/csv; charset=utf-8",
    "general-ledger": "text/csv; charset=utf-8",
}
FORMAT_LABELS = {  # in the catalogue: shown through _() in the page's language
    "fec": "FEC",
    "fec-latin9": "FEC (ISO 8859-15)",
    "csv": N_("Journal général (CSV)"),
    "beancount": "Beancount",
    "hledger": "hledger",
    "trial-balance": N_("Balance générale (CSV)"),
    "general-ledger": N_("Grand livre (CSV)"),
}


# --- what to export -----------------------------------------------------------------------


def parse_date(text: str | None, what: str) -> dt.date:
    raw = (text or "").strip()
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return dt.datetime.strptime(raw, fmt).date()
        except ValueError:
            continue
    raise ExportError(f"{what} invalide : {raw or '(vide)'} (AAAA-MM-JJ)")


async def resolve_scope(session: AsyncSession, *, siren: str | None, site: str | None, start: dt.date, end: dt.date) -> Scope:
    if start > end:
        raise ExportError(f"période inversée : du {start.isoformat()} au {end.isoformat()}")
    try:
        org = await organisation_for(session, siren)
        place = await site_by_slug(session, site) if site else None
    except OrgError as exc:
        raise ExportError(str(exc)) from None
    if place is not None and place.org_id != org.id:
        raise ExportError(f"le lieu {place.slug} n'appartient pas à l'organisation {org.siren}")
    closed_through = await session.scalar(select(LedgerHead.closed_through).where(LedgerHead.org_id == org.id))
    closed = bool(closed_through and end <= closed_through)
    fiscal_start = fiscal_year_start(end, org.fiscal_year_start_month)
    fiscal_end = (fiscal_start.replace(year=fiscal_start.year + 1)) - dt.timedelta(days=1)
    labels, name = None, org.name
    if closed:  # the labels frozen by the closing of the period's last month
        labels = await session.scalar(select(Closing.labels).where(
            Closing.org_id == org.id, Closing.start_date <= end, Closing.end_date >= end))
        if labels is not None:
            name = json.loads(labels)["org"]["name"]
    return Scope(
        org_id=org.id, siren=org.siren, org_name=name, currency=org.currency, start=start, end=end,
        site_id=place.id if place else None, site_slug=place.slug if place else None, closed=closed, labels=labels,
        fiscal_start=fiscal_start, fiscal_end=fiscal_end,
    )


def filename(fmt: str, scope: Scope) -> str:
    if fmt in FEC_FORMATS:
        return journal.fec_filename(scope)
    if fmt in DESCRIPTIONS:
        return journal.fec_filename(scope).removesuffix(".txt") + "-description.txt"
    site = f"-{scope.site_slug}" if scope.site_slug else ""
    stem = {"csv": "journal", "beancount": "grand-livre", "hledger": "grand-livre", "trial-balance": "balance",
            "general-ledger": "grand-livre"}[fmt]
    ext = {"beancount": "beancount", "hledger": "journal"}.get(fmt, "csv")
    return f"{stem}-{scope.siren}{site}-{scope.start:%Y%m%d}-{scope.end:%Y%m%d}.{ext}"


async def chunks(conn: AsyncConnection, scope: Scope, fmt: str, progress: Callable[[int], None] | None = None,
                 notes: journal.Transliterated | None = None) -> AsyncIterator[bytes]:
    """The export's bytes, streamed from ``conn``; ``notes`` counts what the ISO 8859-15 FEC transliterated."""
    if fmt == ExportFormat.FEC_LATIN9:
        async for chunk in journal.fec_latin9(conn, scope, progress, notes):
            yield chunk
        return
    if fmt == "trial-balance":
        async with AsyncSession(bind=conn) as session:
            rows = await books.balance_rows(session, scope)
        if progress:
            progress(len(rows))
        yield books.trial_balance_csv(rows)
        return
    maker = {"fec": journal.fec, "csv": journal.journal_csv, "beancount": textledgers.beancount,
             "hledger": textledgers.hledger, "general-ledger": books.general_ledger_csv}.get(fmt)
    if maker is None:
        raise ExportError(f"format inconnu : {fmt} ({', '.join(FORMATS)})")
    async for chunk in maker(conn, scope, progress):
        yield chunk


@dataclass
class Digest:
    """Counts and hashes bytes as they pass."""

    sha: hashlib._Hash = field(default_factory=hashlib.sha256)
    size: int = 0
    rows: int = 0
    notes: journal.Transliterated = field(default_factory=journal.Transliterated)

    def add(self, chunk: bytes) -> bytes:
        self.sha.update(chunk)
        self.size += len(chunk)
        return chunk

    def count(self, n: int) -> None:
        self.rows += n

    @property
    def hexdigest(self) -> str:
        return self.sha.hexdigest()


async def digest_of(conn: AsyncConnection, scope: Scope, fmt: str) -> Digest:
    """Hash an export without keeping it (memory stays flat)."""
    digest = Digest()
    async for chunk in chunks(conn, scope, fmt, digest.count, digest.notes):
        digest.add(chunk)
    return digest


async def build(conn: AsyncConnection, scope: Scope, fmt: str) -> bytes:
    """The whole export in memory: only for what fits an email."""
    return b"".join([chunk async for chunk in chunks(conn, scope, fmt)])


def fec_description(scope: Scope, digest: Digest, fmt: str = ExportFormat.FEC) -> bytes:
    """The written description of the FEC file that goes alongside it (same bytes every time).
    ``fmt``: which FEC (UTF-8 or ISO 8859-15) it describes."""
    site = (f"\nRestriction        : écritures du lieu « {scope.site_slug} » seulement "
            "(fichier de travail, pas le FEC légal de l'organisation)") if scope.site_slug else ""
    if scope.monthly and scope.fiscal_end is not None:
        site += (f"\nFichier mensuel     : écritures du mois {scope.start:%m/%Y} seulement (fichier de travail, pas le FEC "
                 f"légal de l'exercice clos le {scope.fiscal_end:%d/%m/%Y}, qui s'appellera "
                 f"{scope.siren}FEC{scope.fiscal_end:%Y%m%d}.txt)")
    if fmt == ExportFormat.FEC_LATIN9:
        encoding = ("ISO 8859-15 (Latin-9), sans marque d'ordre des octets. Les caractères hors de ce jeu sont "
                    "translittérés (lettres sans leur accent, guillemets et tirets typographiques en ' \" -, "
                    f"autres caractères en « ? ») : {digest.notes.zones} zone(s) de texte translittérée(s).")
    else:
        encoding = "UTF-8, sans marque d'ordre des octets (BOM)."
    numbering = ("numéro de l'écriture dans le FEC de l'exercice (à-nouveaux en premier, puis ordre de validation),\n"
                 "  continu sur l'exercice : les fichiers mensuels portent les numéros que portera le fichier\n"
                 "  de l'exercice, sans trou d'un mois à l'autre" if scope.monthly else
                 "numéro continu de l'écriture dans ce fichier, à partir de 1, sans trou, dans l'ordre\n"
                 "  de validation des écritures (les à-nouveaux en premier)")
    text = f"""Description du fichier des écritures comptables (FEC)
=====================================================

Fichier            : {journal.fec_filename(scope)}
Organisation       : {scope.org_name}
SIREN              : {scope.siren}
Période            : du {scope.start:%d/%m/%Y} au {scope.end:%d/%m/%Y}{site}
Période close      : {"oui (fichier reproductible à l'identique)" if scope.closed else "non (des écritures peuvent encore être ajoutées)"}
Lignes d'écriture  : {digest.rows}
Taille             : {digest.size} octets
Empreinte SHA-256  : {digest.hexdigest}
Logiciel           : Entre-Lab Funding (comptabilité en partie double, inaltérable, chaînée par SHA-256)

Format (article A47 A-1 du livre des procédures fiscales)
- Codage des caractères : {encoding}
- Séparateur de zones : tabulation (caractère 09). Aucune zone ne contient de tabulation.
- Fin d'enregistrement : LF (caractère 0A).
- Première ligne : les 18 noms de zones, dans l'ordre réglementaire.
- Dates au format AAAAMMJJ ; montants avec une virgule décimale, sans séparateur de milliers,
  exprimés en {scope.currency} ; une seule des zones Debit / Credit est non nulle par ligne.
- Une ligne par ligne d'écriture ; chaque écriture est équilibrée.

Zones
- JournalCode / JournalLib : ST Stripe, VT Ventes, CA Caisse (bar), BQ Banque, OD Opérations diverses, AN À-nouveaux.
- EcritureNum : {numbering}. Le numéro propre du grand livre figure
  dans la colonne « numero » du journal général CSV.
- EcritureDate : date de l'opération ; ValidDate : date de validation (heure de Paris), toujours
  postérieure ou égale à EcritureDate. Une écriture validée n'est plus modifiable : une correction
  est une écriture de contrepassation.
- CompteNum / CompteLib : plan comptable des associations (PCG) ; 5115 sert de compte du solde Stripe.
- CompAuxNum / CompAuxLib : compte auxiliaire (adhérent, client, financeur) quand il y en a un.
- PieceRef / PieceDate : pièce justificative (identifiant Stripe, référence de relevé, de convention…).
- EcritureLib : libellé de la ligne, à défaut celui de l'écriture.
- EcritureLet / DateLet : vides (le lettrage n'est pas tenu dans ce logiciel).
- Montantdevise / Idevise : vides (toutes les écritures sont en {scope.currency}).
"""
    return text.replace("\n", "\r\n").encode()


async def record_taken(session: AsyncSession, scope: Scope, fmt: str, digest: Digest, *, taken_by: str, channel: str) -> None:
    session.add(ExportLog(
        org_id=scope.org_id, site_id=scope.site_id, format=fmt, start_date=scope.start, end_date=scope.end,
        filename=filename(fmt, scope), sha256=digest.hexdigest, size=digest.size, rows=digest.rows, closed=scope.closed,
        taken_by=taken_by[:254], channel=channel, taken_at=utcnow(),
    ))
    await session.flush()


# --- writing files (command line) ------------------------------------------------------------


@dataclass
class Written:
    path: Path
    digest: Digest
    extra: list[Path] = field(default_factory=list)


def _target(output: Path, fmt: str, scope: Scope) -> Path:
    """The file to write: in ``output`` if it is a directory (made for the FEC), else ``output``."""
    if fmt in FEC_FORMATS:
        if output.exists() and not output.is_dir():
            raise ExportError(f"--output doit être un répertoire pour le FEC : {output} est un fichier")
        output.mkdir(parents=True, exist_ok=True)
        return output / filename(fmt, scope)
    if output.is_dir():
        return output / filename(fmt, scope)
    if not output.parent.is_dir():
        raise ExportError(f"répertoire introuvable : {output.parent}")
    return output


async def write_export(engine: AsyncEngine, sessions: async_sessionmaker, scope: Scope, fmt: str, output: Path, *,
                       taken_by: str, progress: Callable[[int], None] | None = None) -> Written:
    """Stream an export to disk (``output`` is a directory for the FEC), then log it.

    Written to a temporary name and renamed at the end: a failed export leaves no file."""
    target = await asyncio.to_thread(_target, output, fmt, scope)
    partial = target.with_name(target.name + ".part")
    digest = Digest()

    def count(n: int) -> None:
        digest.count(n)
        if progress:
            progress(n)

    fh = await asyncio.to_thread(open, partial, "wb")
    try:
        async with engine.connect() as conn:
            async for chunk in chunks(conn, scope, fmt, count, digest.notes):
                await asyncio.to_thread(fh.write, digest.add(chunk))
        await asyncio.to_thread(fh.close)
        await asyncio.to_thread(os.replace, partial, target)
    except BaseException:
        fh.close()
        partial.unlink(missing_ok=True)
        raise
    written = Written(target, digest)
    if fmt in FEC_FORMATS:
        description = target.with_name(filename("fec-description", scope))
        await asyncio.to_thread(description.write_bytes, fec_description(scope, digest, fmt))
        written.extra.append(description)
    async with sessions() as session:
        await record_taken(session, scope, fmt, digest, taken_by=taken_by, channel=Channel.CLI)
        await session.commit()
    return written


# --- recipients and sending ---------------------------------------------------------------


def check_formats(text: str) -> str:
    formats = [f.strip() for f in (text or "").split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ExportError(f"formats invalides : {text or '(vide)'} (parmi {', '.join(FORMATS)})")
    return ",".join(dict.fromkeys(formats))


@dataclass(frozen=True)
class Recipient:
    email: str
    name: str
    formats: tuple[str, ...]


async def recipients_for(session: AsyncSession, org_id: int) -> list[Recipient]:
    """The organisation's configured recipients, or else its active accountants."""
    rows = (await session.scalars(select(ExportRecipient).where(ExportRecipient.org_id == org_id, ExportRecipient.active)
                                  .order_by(ExportRecipient.email))).all()
    if rows:
        return [Recipient(r.email, r.name, tuple(r.formats.split(","))) for r in rows]
    users = (await session.scalars(select(User).join(Membership, Membership.user_id == User.id)
                                   .where(Membership.org_id == org_id, Membership.role == "accountant", User.active)
                                   .order_by(User.email))).all()
    return [Recipient(u.email, u.name, DEFAULT_FORMATS) for u in users]


async def add_recipient(session: AsyncSession, org_id: int, email: str, name: str = "", formats: str = ",".join(DEFAULT_FORMATS)) -> bool:
    """Add (or reactivate with new formats) a recipient. True if it was new."""
    from funding.auth.service import AuthError, normalise_email

    try:
        email = normalise_email(email)
    except AuthError as exc:
        raise ExportError(str(exc)) from None
    formats = check_formats(formats)
    new = await insert_ignore(session, ExportRecipient, {"org_id": org_id, "email": email, "name": name.strip()[:200],
                                                         "formats": formats, "active": True, "created_at": utcnow()},
                              ["org_id", "email"])
    if new is None:
        # The INSERT met this row: it exists.
        row = (await session.execute(
            select(ExportRecipient).where(ExportRecipient.org_id == org_id, ExportRecipient.email == email))).scalar_one()
        row.active, row.formats = True, formats
        if name.strip():
            row.name = name.strip()[:200]
        await session.flush()
    return new is not None


def dedupe_key(siren: str, period: str, fmt: str, email: str) -> str:
    return f"exports:{siren}:{period}:{fmt}:{hashlib.sha256(email.encode()).hexdigest()[:24]}"


@dataclass
class Queued:
    email: str
    format: str
    dedupe_key: str
    new: bool
    mode: str  # attachment or link
    size: int


async def queue_period(session: AsyncSession, settings: Settings, org: Organisation, period: str, *,
                       to: str | None = None, formats: str | None = None, created_by: str = "") -> list[Queued]:
    """Queue the emails carrying a closed month's exports to each recipient, once per
    period, recipient and format. Records that the month was prepared."""
    try:
        start, end = month_bounds(period)
    except LedgerError as exc:
        raise ExportError(str(exc)) from None
    scope = await resolve_scope(session, siren=org.siren, site=None, start=start, end=end)
    if not scope.closed:
        raise ExportError(f"le mois {period} n'est pas clos pour {org.name} : clôturez-le d'abord "
                          f"(funding ledger close {period} --org {org.siren})")
    if to:
        from funding.auth.service import AuthError, normalise_email

        try:
            recipients = [Recipient(normalise_email(to), "", tuple(check_formats(formats or ",".join(DEFAULT_FORMATS)).split(",")))]
        except AuthError as exc:
            raise ExportError(str(exc)) from None
    else:
        recipients = await recipients_for(session, org.id)
    conn = await session.connection()
    digests: dict[str, Digest] = {}
    queued: list[Queued] = []
    sealed = await session.scalar(select(Seal).where(Seal.org_id == org.id, Seal.kind == SealKind.MONTH, Seal.period == period))
    feed_url = f"{settings.base_url}/open-data/ledger-seals.csv?org={org.siren}"
    seal = seal_text(sealed, org.siren) if sealed is not None else ""  # kept by the accountant, below the message
    for person in recipients:
        locale = await recipient_locale(session, email=person.email)
        for fmt in person.formats:
            if fmt not in digests:
                digests[fmt] = await digest_of(conn, scope, fmt)
            digest = digests[fmt]
            key = dedupe_key(org.siren, period, fmt, person.email)
            ref = {"kind": "export", "org": org.siren, "period": period, "format": fmt, "sha256": digest.hexdigest,
                   "to": person.email}
            name = filename(fmt, scope)
            about: dict[str, Any] = {"name": person.name, "label": FORMAT_LABELS[fmt], "org": org.name, "period": period, "file": name,
                                     "sha": digest.hexdigest, "seal": seal, "seals_url": feed_url, "link": None}
            if digest.size <= ATTACHMENT_LIMIT:
                mode, attachments = "attachment", [ref] + ([{**ref, "format": f"{fmt}-description"}] if fmt in FEC_FORMATS else [])
            else:
                mode, attachments = "link", None
                # A link lives as long as its address receives the exports (one sent --to an address: its 30 days).
                token = sign(settings.secret_key, LINK_PURPOSE,
                             {**{k: ref[k] for k in ("org", "period", "format", "sha256", "to")}, "adhoc": bool(to)})
                link = f"{settings.base_url}/exports/lien/{token}"
                about.update(link=link, size=digest.size, expires=(utcnow() + dt.timedelta(seconds=LINK_MAX_AGE)).date())
            new = await enqueue(session, to=person.email, org_id=org.id, dedupe_key=key, attachments=attachments,
                                **render("exports/period", locale, **about))
            if new is not None and mode == "attachment":
                await record_taken(session, scope, fmt, digest, taken_by=person.email, channel=Channel.EMAIL)
            queued.append(Queued(person.email, fmt, key, new is not None, mode, digest.size))
    run = await insert_ignore(session, ExportRun, {"org_id": org.id, "period": period, "emails": sum(q.new for q in queued),
                                                   "created_by": created_by, "created_at": utcnow()}, ["org_id", "period"])
    if run is None and any(q.new for q in queued):
        # The INSERT met this row: it exists.
        existing = (await session.execute(
            select(ExportRun).where(ExportRun.org_id == org.id, ExportRun.period == period))).scalar_one()
        existing.emails += sum(q.new for q in queued)
    await session.flush()
    return queued


async def check_link_recipient(session: AsyncSession, scope: Scope, ref: dict) -> None:
    """A link sent to a recipient dies with that recipient: removed from the organisation's
    recipients (or, with none configured, no longer one of its accountants), it opens nothing."""
    if ref.get("adhoc"):
        return
    if ref["to"] not in {r.email for r in await recipients_for(session, scope.org_id)}:
        raise ExportError(_("Ce lien n'est plus valable : son destinataire ne reçoit plus les exports de cette "
                            "organisation."))


async def scope_for_ref(session: AsyncSession, ref: dict) -> Scope:
    start, end = month_bounds(ref["period"])
    return await resolve_scope(session, siren=ref["org"], site=None, start=start, end=end)


async def load_attachment(sessions: async_sessionmaker, settings: Settings, ref: dict) -> tuple[str, str, bytes]:
    """Rebuild an emailed export and check it is the file whose hash was recorded."""
    try:
        async with sessions() as session:
            scope = await scope_for_ref(session, ref)
            conn = await session.connection()
            if ref["format"] in DESCRIPTIONS:
                described = DESCRIPTIONS[ref["format"]]
                digest = await digest_of(conn, scope, described)
                data = fec_description(scope, digest, described)
            else:
                data = await build(conn, scope, ref["format"])
                digest = Digest()
                digest.add(data)
    except (ExportError, LedgerError, KeyError) as exc:
        raise AttachmentError(f"export {ref}: {exc}") from None
    if digest.hexdigest != ref["sha256"]:
        raise AttachmentError(f"export {ref['format']} {ref['period']}: the file differs from the one recorded "
                              f"({digest.hexdigest[:12]}… ≠ {ref['sha256'][:12]}…); run funding ledger verify")
    mime = MEDIA_TYPES[ref["format"]].split(";")[0]
    return filename(ref["format"], scope), mime, data


register_attachment("export", load_attachment)


def read_link(settings: Settings, token: str) -> dict:
    try:
        data = unsign(settings.secret_key, LINK_PURPOSE, token, max_age=LINK_MAX_AGE)
    except TokenError as exc:
        raise ExportError(_("Ce lien de téléchargement a expiré : demandez un nouvel envoi.") if str(exc) == "expired"
                          else _("Ce lien de téléchargement est invalide.")) from None
    keys = {"org", "period", "format", "sha256", "to"}
    if not isinstance(data, dict) or set(data) - {"adhoc"} != keys or data["format"] not in FORMATS:
        raise ExportError(_("Ce lien de téléchargement est invalide."))
    return data


async def sending_status(session: AsyncSession, keys: list[str]) -> dict[str, Email]:
    rows = (await session.scalars(select(Email).where(Email.dedupe_key.in_(keys)))).all() if keys else []
    return {e.dedupe_key: e for e in rows}


async def periods_to_send(session: AsyncSession) -> list[tuple[Organisation, str]]:
    """Each organisation's last closed month, if its exports were never prepared."""
    rows = (await session.execute(
        select(Organisation, LedgerHead.closed_through).join(LedgerHead, LedgerHead.org_id == Organisation.id)
        .where(LedgerHead.closed_through.is_not(None)).order_by(Organisation.id)
    )).all()
    todo = []
    for org, closed_through in rows:
        period = cast("dt.date", closed_through).strftime("%Y-%m")  # never NULL: the query keeps closed ledgers only
        done = await session.scalar(select(ExportRun.id).where(ExportRun.org_id == org.id, ExportRun.period == period))
        if done is None:
            todo.append((org, period))
    return todo


async def site_choices(session: AsyncSession) -> Sequence[Row[int, str, str, int]]:
    return (await session.execute(select(Site.id, Site.slug, Site.name, Site.org_id).order_by(Site.is_central.desc(), Site.name))).all()
