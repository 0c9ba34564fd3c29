"""Seals: the books' anchors outside the database.

The hash chains prove that nothing changed *unless someone recomputed them*: whoever can
write the database can delete the last entries, or change an amount and rehash everything
after it, and the chains still hold. A seal is what they cannot rewrite. Every closing (a
ledger month, a bar day, month or year) seals the organisation's chain heads at that
moment — the last entry's number and hash, the ledger closings' and the closing till's heads,
the row counts of the append-only tables that have no chain of their own — chains it to the
previous seal and signs it with an Ed25519 key that lives in the environment, never in the
database (``LEDGER_SEAL_KEY``). The seals are published (``/open-data/ledger-seals.csv`` and
``.json``: no personal data) and sent in each month's email to the accountants: copies live
where the database's owner cannot reach.

``funding ledger verify --seals FILE|URL`` then checks that the books still pass through every
seal it is given, and names the first that no longer holds.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import hashlib
import io
import json
from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from funding import csvout
from funding.db import AnyRow
from funding.errors import FundingError
from funding.ledger.canonical import chain_hash, seal_document
from funding.ledger.models import GENESIS_HASH, Closing, Entry, LedgerHead, Seal
from funding.orgs.models import Organisation, Site

if TYPE_CHECKING:
    from funding.bar.models import TillHead
    from funding.ledger.verify import VerifyReport
    from funding.settings import Settings


class SealError(FundingError):
    """A seal cannot be made or read; the message says why, for a person."""


def key_id(public: Ed25519PublicKey) -> str:
    return hashlib.sha256(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()[:16]


def public_text(public: Ed25519PublicKey) -> str:
    return base64.b64encode(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def load_public(text: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise SealError(f"clé publique illisible : {text[:60]!r}") from None


@dataclass(frozen=True)
class Keyring:
    """The key that signs new seals, and the public keys whose seals this installation trusts."""

    signing: Ed25519PrivateKey | None
    trusted: dict[str, Ed25519PublicKey] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> Keyring:
        signing = None
        trusted: dict[str, Ed25519PublicKey] = {}
        if settings.seal_key:
            signing = Ed25519PrivateKey.from_private_bytes(base64.b64decode(settings.seal_key))
            trusted[key_id(signing.public_key())] = signing.public_key()
        for text in settings.seal_public_keys:
            public = load_public(text)
            trusted[key_id(public)] = public
        return cls(signing, trusted)

    @property
    def key_id(self) -> str:
        if self.signing is None:
            raise SealError("LEDGER_SEAL_KEY n'est pas configurée : les clôtures sont scellées avec elle")
        return key_id(self.signing.public_key())

    def sign(self, digest: str) -> str:
        if self.signing is None:
            raise SealError("LEDGER_SEAL_KEY n'est pas configurée : les clôtures sont scellées avec elle")
        return base64.b64encode(self.signing.sign(digest.encode("ascii"))).decode()

    def public_keys(self) -> dict[str, str]:
        return {kid: public_text(pub) for kid, pub in self.trusted.items()}


def signature_ok(public: Ed25519PublicKey, digest: str, signature: str) -> bool:
    try:
        public.verify(base64.b64decode(signature), digest.encode("ascii"))
        return True
    except (InvalidSignature, ValueError):
        return False


def keyring_of(session: AsyncSession) -> Keyring:
    keyring = session.sync_session.info.get("keyring")
    if not isinstance(keyring, Keyring):
        raise SealError("aucune clé de scellement pour cette session (LEDGER_SEAL_KEY)")
    return keyring


# Append-only tables with no chain of their own: a seal records, per organisation, their
# highest id and how many rows go up to it; a row deleted afterwards lowers that count.
COUNTED = {
    "tax_receipts": "SELECT id FROM tax_receipts WHERE org_id = :org",
    "export_logs": "SELECT id FROM export_logs WHERE org_id = :org",
    "bar_batch_lines": "SELECT l.sale_line_id AS id FROM bar_batch_lines l JOIN bar_batches b ON b.id = l.batch_id "
                       "WHERE b.org_id = :org",
}


async def _counted_ids(conn: AsyncConnection, org_id: int) -> dict[str, list[int]]:
    """Every counted row's id, sorted (verification: how many rows go up to each seal's mark)."""
    from sqlalchemy import text

    return {table: sorted((await conn.execute(text(sql), {"org": org_id})).scalars().all())
            for table, sql in COUNTED.items()}


async def _counts(conn: AsyncConnection, org_id: int) -> dict[str, list[int]]:
    """Per counted table, [highest id, rows] now (a seal's marks)."""
    from sqlalchemy import text

    out: dict[str, list[int]] = {}
    for table, sql in COUNTED.items():
        marks = text(f"SELECT coalesce(max(x.id), 0), count(*) FROM ({sql}) x")  # noqa: S608  (COUNTED's SQL is code; the org is bound)
        top, rows = (await conn.execute(marks, {"org": org_id})).one()
        out[table] = [int(top), int(rows)]
    return out


async def seal(session: AsyncSession, org_id: int, *, kind: str, period: str, site: Site | None = None,
               till_head: TillHead | None = None, now: dt.datetime | None = None) -> Seal:
    """Seal the organisation's heads as they are in this transaction (after the closing)."""
    from funding.db import utcnow

    keyring = keyring_of(session)
    now = now or utcnow()
    head = (await session.execute(select(LedgerHead).where(LedgerHead.org_id == org_id).with_for_update()
                                  .execution_options(populate_existing=True))).scalar_one()
    last = await session.scalar(select(Seal).where(Seal.org_id == org_id).order_by(Seal.seq.desc()).limit(1))
    org = await session.get(Organisation, org_id)
    if org is None:
        raise SealError(f"organisation {org_id} inconnue")
    counts = await _counts(await session.connection(), org_id)
    row = Seal(
        org_id=org_id, seq=(last.seq + 1) if last else 1, kind=kind, period=period, site_id=site.id if site else None,
        entry_number=head.last_number, entry_hash=head.last_hash, closing_hash=head.last_closing_hash,
        bar_seq=till_head.last_seq if till_head is not None else None,
        bar_hash=till_head.last_hash if till_head is not None else None,
        bar_closing_hash=till_head.last_closing_hash if till_head is not None else None,
        bar_archive_hash=till_head.last_archive_hash if till_head is not None else None,
        counts=json.dumps(counts, sort_keys=True, separators=(",", ":")), sealed_at=now, key_id=keyring.key_id,
        prev_hash=last.hash if last else GENESIS_HASH, hash="", signature="",
    )
    row.hash = chain_hash(row.prev_hash, seal_document(row, org.siren, site.slug if site else None))
    row.signature = keyring.sign(row.hash)
    session.add(row)
    await session.flush()
    return row


# --- the public feed -------------------------------------------------------------------------------

FEED_COLUMNS = ("siren", "seq", "kind", "period", "site", "entry_number", "entry_hash", "closing_hash", "bar_seq",
                "bar_hash", "bar_closing_hash", "bar_archive_hash", "counts", "sealed_at", "key_id", "prev_hash", "hash",
                "signature", "public_key")


async def feed(session: AsyncSession, keyring: Keyring, *, siren: str | None = None) -> list[dict[str, Any]]:
    """Every seal (of one organisation, or all), oldest first, as published: nothing personal."""
    query = (select(Seal, Organisation.siren, Site.slug).join(Organisation, Organisation.id == Seal.org_id)
             .outerjoin(Site, Site.id == Seal.site_id).order_by(Organisation.siren, Seal.seq))
    if siren:
        query = query.where(Organisation.siren == siren)
    keys = keyring.public_keys()
    return [{
        "siren": org_siren, "seq": s.seq, "kind": s.kind, "period": s.period, "site": slug or "",
        "entry_number": s.entry_number, "entry_hash": s.entry_hash, "closing_hash": s.closing_hash,
        "bar_seq": s.bar_seq if s.bar_seq is not None else "", "bar_hash": s.bar_hash or "",
        "bar_closing_hash": s.bar_closing_hash or "", "bar_archive_hash": s.bar_archive_hash or "", "counts": s.counts,
        "sealed_at": s.sealed_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "key_id": s.key_id, "prev_hash": s.prev_hash,
        "hash": s.hash, "signature": s.signature, "public_key": keys.get(s.key_id, ""),
    } for s, org_siren, slug in (await session.execute(query)).all()]


def feed_csv(rows: list[dict[str, Any]]) -> bytes:
    buf = io.StringIO()
    writer = csvout.dict_writer(buf, FEED_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode()


def feed_json(rows: list[dict[str, Any]], keyring: Keyring) -> bytes:
    body = {
        "description": "Sceaux des clôtures (mois comptables, journées, mois et exercices du bar) : numéro et empreinte "
                       "de la dernière écriture et des têtes de chaîne à la clôture, signés en Ed25519. Gardez-en une "
                       "copie : `funding ledger verify --seals FICHIER` vérifie que les comptes passent toujours par eux.",
        "signature": "Ed25519 sur l'empreinte (hash, en hexadécimal ASCII) ; clés publiques en base64 de leurs 32 octets",
        "keys": keyring.public_keys(),
        "seals": [{**r, "counts": json.loads(r["counts"])} for r in rows],
    }
    return json.dumps(body, ensure_ascii=False, indent=1).encode()


def seal_text(s: Seal, siren: str) -> str:
    """The seal as an accountant keeps it from an email (same fields as the feed)."""
    return (f"Sceau n° {s.seq} ({s.kind} {s.period}) de {siren}, {s.sealed_at:%Y-%m-%d %H:%M:%S} UTC\n"
            f"  dernière écriture : n° {s.entry_number}, empreinte {s.entry_hash}\n"
            f"  empreinte du sceau : {s.hash}\n  clé {s.key_id}, signature {s.signature}")


# --- reading seals kept elsewhere -------------------------------------------------------------------


@dataclass(frozen=True)
class KeptSeal:
    """A seal as someone kept it (the feed saved earlier, an accountant's CSV)."""

    siren: str
    seq: int
    kind: str
    period: str
    site: str | None
    entry_number: int
    entry_hash: str
    closing_hash: str
    bar_seq: int | None
    bar_hash: str | None
    bar_closing_hash: str | None
    bar_archive_hash: str | None
    counts: str
    sealed_at: dt.datetime
    key_id: str
    prev_hash: str
    hash: str
    signature: str
    public_key: str

    def document(self) -> bytes:
        return seal_document(self, self.siren, self.site)


def _kept(row: dict[str, Any]) -> KeptSeal:
    def opt(name: str) -> Any:
        value = row.get(name)
        return None if value in (None, "") else value

    try:
        counts = row["counts"]
        counts = json.dumps(counts if isinstance(counts, dict) else json.loads(counts), sort_keys=True, separators=(",", ":"))
        return KeptSeal(
            siren=str(row["siren"]), seq=int(row["seq"]), kind=str(row["kind"]), period=str(row["period"]),
            site=opt("site"), entry_number=int(row["entry_number"]), entry_hash=str(row["entry_hash"]),
            closing_hash=str(row["closing_hash"]), bar_seq=int(row["bar_seq"]) if opt("bar_seq") is not None else None,
            bar_hash=opt("bar_hash"), bar_closing_hash=opt("bar_closing_hash"), bar_archive_hash=opt("bar_archive_hash"),
            counts=counts, sealed_at=dt.datetime.strptime(str(row["sealed_at"]), "%Y-%m-%dT%H:%M:%S.%fZ"),
            key_id=str(row["key_id"]), prev_hash=str(row["prev_hash"]), hash=str(row["hash"]),
            signature=str(row["signature"]), public_key=str(row.get("public_key") or ""),
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise SealError(f"sceau illisible ({type(exc).__name__}: {exc})") from None


def parse_kept(data: bytes) -> list[KeptSeal]:
    """Seals from the JSON feed or its CSV, as saved by whoever kept them."""
    text = data.decode("utf-8-sig", errors="replace").strip()
    if not text:
        raise SealError("le fichier de sceaux est vide")
    if text.startswith("{"):
        try:
            body = json.loads(text)
        except ValueError as exc:
            raise SealError(f"JSON illisible : {exc}") from None
        keys = body.get("keys") or {} if isinstance(body, dict) else {}
        rows = body.get("seals") if isinstance(body, dict) else None
        if not isinstance(rows, list):
            raise SealError("le JSON ne contient pas de liste « seals »")
        return [_kept({**r, "public_key": r.get("public_key") or keys.get(r.get("key_id"), "")}) for r in rows
                if isinstance(r, dict)]
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or not {"siren", "seq", "hash", "signature"} <= set(reader.fieldnames):
        raise SealError("CSV sans les colonnes d'un fichier de sceaux (siren, seq, hash, signature…)")
    # The feed's CSV goes through funding.csvout, which marks a cell starting like a formula with an
    # apostrophe: a base64 signature or key may start with "+". No field of a seal starts with one.
    return [_kept({k: v[1:] if isinstance(v, str) and v.startswith("'") else v for k, v in row.items()}) for row in reader]


def read_kept(source: str) -> list[KeptSeal]:
    """``source``: a file path, or an http(s) URL of the published feed."""
    if source.startswith(("http://", "https://")):
        import httpx

        try:
            response = httpx.get(source, timeout=30, follow_redirects=True)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise SealError(f"{source} : {exc}") from None
        return parse_kept(response.content)
    try:
        with open(source, "rb") as fh:
            return parse_kept(fh.read())
    except OSError as exc:
        raise SealError(f"{source} : {exc.strerror or exc}") from None


# --- verification -----------------------------------------------------------------------------------


async def verify(conn: AsyncConnection, org_id: int, report: VerifyReport, keyring: Keyring | None,
                 kept: list[KeptSeal] | None = None) -> None:
    """The organisation's own seals (chained, signed by a trusted key) and every seal given in
    ``kept``: each must still hold — the entry it names has the hash it had, the closings,
    sale line, till closings and archive it names exist, no counted row went missing.
    Without a ``keyring`` the signatures are not checked (and the report says so)."""
    from funding.bar.models import Archive, SaleLine, TillClosing

    org = (await conn.execute(select(Organisation.siren).where(Organisation.id == org_id))).scalar_one()
    sites = dict((await conn.execute(select(Site.id, Site.slug).where(Site.org_id == org_id))).all())
    slugs: dict[str | None, int] = {v: k for k, v in sites.items()}
    rows = (await conn.execute(select(Seal.__table__).where(Seal.org_id == org_id).order_by(Seal.seq))).all()
    stored = {r.seq: r for r in rows}
    mine = [s for s in (kept or []) if s.siren == org]
    seals = [_from_row(r, org, sites.get(r.site_id)) for r in rows] + mine
    if not seals:
        return

    # Everything the seals point at, read once.
    numbers = sorted({s.entry_number for s in seals if s.entry_number})
    entries: dict[int | None, str | None] = {}
    for i in range(0, len(numbers), 5000):
        part = numbers[i:i + 5000]
        entries.update((await conn.execute(select(Entry.number, Entry.hash).where(
            Entry.org_id == org_id, Entry.number.in_(part)))).all())
    closings = set((await conn.execute(select(Closing.hash).where(Closing.org_id == org_id))).scalars().all())
    till_closings = set((await conn.execute(select(TillClosing.hash).where(TillClosing.org_id == org_id))).scalars().all())
    archives = set((await conn.execute(select(Archive.hash).where(Archive.org_id == org_id))).scalars().all())
    lines: dict[tuple[str | None, int], str] = {}
    by_site: defaultdict[str | None, set[int]] = defaultdict(set)
    for s in seals:
        if s.bar_seq:
            by_site[s.site].add(s.bar_seq)
    for slug, seqs in by_site.items():
        site_id = slugs.get(slug)
        if site_id is None:
            continue
        for seq, digest in (await conn.execute(select(SaleLine.seq, SaleLine.hash).where(
                SaleLine.site_id == site_id, SaleLine.seq.in_(sorted(seqs))))).all():
            lines[(slug, seq)] = digest
    counted = await _counted_ids(conn, org_id)

    # The database's own chain of seals.
    prev = GENESIS_HASH
    for expected, s in enumerate(seals[:len(rows)], start=1):
        where = _name(s)
        if s.seq != expected:
            report.problem(f"{where}: numbering gap, expected seal {expected}")
        if s.prev_hash != prev:
            report.problem(f"{where}: not chained to seal {s.seq - 1}")
        prev = s.hash
    report.counts["seals"] = report.counts.get("seals", 0) + len(rows)
    if mine:
        report.counts["seals kept elsewhere"] = report.counts.get("seals kept elsewhere", 0) + len(mine)

    checked: set[tuple[int, str]] = set()
    for index, s in enumerate(seals):
        is_kept = index >= len(rows)
        if (s.seq, s.hash) in checked:
            continue
        checked.add((s.seq, s.hash))
        where = _name(s)
        if chain_hash(s.prev_hash, s.document()) != s.hash:
            report.problem(f"{where}: its content does not match its hash")
            continue
        if keyring is not None and keyring.trusted:
            public = keyring.trusted.get(s.key_id)
            if public is None:
                report.problem(f"{where}: signed with key {s.key_id}, which this installation does not trust")
        elif s.public_key:  # nothing trusted here: the key kept with the seal, said so
            public = load_public(s.public_key)
            report.notes.add("seal signatures checked against the keys kept with them")
        else:
            public = None
            report.notes.add("signatures of the database's seals not checked: no LEDGER_SEAL_KEY or "
                             "LEDGER_SEAL_PUBLIC_KEYS here")
        if public is not None and not signature_ok(public, s.hash, s.signature):
            report.problem(f"{where}: its signature is not valid: it was not made with key {s.key_id}")
        if s.entry_number and entries.get(s.entry_number) != s.entry_hash:
            state = "is missing" if s.entry_number not in entries else "no longer has the hash it had"
            report.problem(f"{where}: entry {s.entry_number} {state}")
        if s.closing_hash != GENESIS_HASH and s.closing_hash not in closings:
            report.problem(f"{where}: the closing it sealed is missing or altered")
        if s.bar_seq and lines.get((s.site, s.bar_seq)) != s.bar_hash:
            report.problem(f"{where}: bar {s.site} sale line {s.bar_seq} is missing or altered")
        if s.bar_closing_hash and s.bar_closing_hash != GENESIS_HASH and s.bar_closing_hash not in till_closings:
            report.problem(f"{where}: bar {s.site}'s closing it sealed is missing or altered")
        if s.bar_archive_hash and s.bar_archive_hash != GENESIS_HASH and s.bar_archive_hash not in archives:
            report.problem(f"{where}: bar {s.site}'s archive it sealed is missing or altered")
        for table, (top, count) in json.loads(s.counts).items():
            found = bisect_right(counted.get(table, []), top)
            if found < count:
                report.problem(f"{where}: {count - found} row(s) of {table} deleted since")
        if is_kept:  # after what it says of the books, which tells more
            own = stored.get(s.seq)
            if own is None:
                report.problem(f"{where}: missing from the database")
            elif own.hash != s.hash:
                report.problem(f"{where}: the database holds another seal under this number")


def _name(s: KeptSeal) -> str:
    return f"seal {s.seq} ({s.kind} {s.period}, {s.sealed_at:%Y-%m-%d})"


def _from_row(r: AnyRow, siren: str, slug: str | None) -> KeptSeal:
    return KeptSeal(siren, r.seq, r.kind, r.period, slug, r.entry_number, r.entry_hash, r.closing_hash, r.bar_seq, r.bar_hash,
                    r.bar_closing_hash, r.bar_archive_hash, r.counts, r.sealed_at, r.key_id, r.prev_hash, r.hash,
                    r.signature, "")
