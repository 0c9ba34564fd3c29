"""The ledger's postings as files, streamed: FEC (ACCOUNTING.md §4) and the CSV general journal.

Every format reads the same rows (one per posting of a validated entry, filtered by
organisation, period and optionally site) through a streaming cursor, so memory stays
flat whatever the size. On PostgreSQL the FEC is formatted by the database itself and
streamed with ``COPY … TO STDOUT``; elsewhere Python formats the same bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import io
import json
import unicodedata
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import case, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from funding import csvout
from funding.clock import PARIS
from funding.db import AnyRow
from funding.errors import FundingError
from funding.ledger.models import Account, AuxAccount, Entry, Grant, Journal, Posting
from funding.ledger.service import validated_entries
from funding.money import exponent, format_plain
from funding.orgs.models import Site

BATCH = 5_000
BLOCK = 1 << 20
FEC_COLUMNS = (
    "JournalCode", "JournalLib", "EcritureNum", "EcritureDate", "CompteNum", "CompteLib", "CompAuxNum", "CompAuxLib",
    "PieceRef", "PieceDate", "EcritureLib", "Debit", "Credit", "EcritureLet", "DateLet", "ValidDate", "Montantdevise",
    "Idevise",
)
FEC_SEPARATOR = "\t"
FEC_NEWLINE = "\n"
CSV_COLUMNS = (
    "numero", "journal", "journal_libelle", "date", "piece", "date_piece", "libelle", "ligne", "compte", "compte_libelle",
    "compte_auxiliaire", "compte_auxiliaire_libelle", "debit", "credit", "devise", "site", "site_nom",
    "origine_des_fonds", "stripe_id", "cle_source", "subvention", "contrepasse_ecriture", "validee_le", "empreinte",
)

Progress = Callable[[int], None]
_E = Entry.__table__.c
_P = Posting.__table__.c
# What would split a FEC record or zone — the tab, every character a reader may take for a
# line break, and \x01, the quote character COPY is told to use — becomes a space.
BREAKS = "\x01\t\n\x0b\x0c\r\x1c\x1d\x1e\x85\u2028\u2029"
_FEC_CLEAN = str.maketrans(BREAKS, " " * len(BREAKS))


class ExportError(FundingError):
    """An export that cannot be made as asked; the message is for a person."""


@dataclass(frozen=True)
class Scope:
    """What to export: one organisation's books over [start, end], optionally one site."""

    org_id: int
    siren: str
    org_name: str
    currency: str
    start: dt.date
    end: dt.date
    site_id: int | None = None
    site_slug: str | None = None
    closed: bool = False  # every day of the period is in a closed month
    labels: str | None = field(default=None, repr=False)  # frozen by the closing of a closed period (JSON)
    # The fiscal year holding the period's last day; None where unknown (then the file is named
    # after the period's end and numbered from 1, as before fiscal years were looked at).
    fiscal_start: dt.date | None = None
    fiscal_end: dt.date | None = None

    @property
    def monthly(self) -> bool:
        """One calendar month, less than the whole fiscal year: a monthly FEC (see :func:`fec_filename`)."""
        if self.fiscal_start is None or self.fiscal_end is None:
            return False
        next_month = (self.start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        whole_month = self.start.day == 1 and self.end == next_month - dt.timedelta(days=1)
        return whole_month and (self.start, self.end) != (self.fiscal_start, self.fiscal_end)


@dataclass
class Lookups:
    accounts: dict[str, str] = field(default_factory=dict)
    aux: dict[str, str] = field(default_factory=dict)
    journals: dict[str, str] = field(default_factory=dict)
    sites: dict[int, tuple[str, str]] = field(default_factory=dict)
    grants: dict[int, str] = field(default_factory=dict)


async def lookups(conn: AsyncConnection, scope: Scope) -> Lookups:
    """The labels printed beside codes: those frozen by the closing for a closed period (so that
    it exports identically forever, renames or not), else today's."""
    if scope.labels is not None:
        frozen = json.loads(scope.labels)
        return Lookups(accounts=frozen["accounts"], aux=frozen["aux"], journals=frozen["journals"],
                       sites={int(k): tuple(v) for k, v in frozen["sites"].items()},
                       grants={int(k): v for k, v in frozen["grants"].items()})
    org_id = scope.org_id
    return Lookups(
        accounts=dict((await conn.execute(select(Account.number, Account.label).where(Account.org_id == org_id))).all()),
        aux=dict((await conn.execute(select(AuxAccount.code, AuxAccount.label).where(AuxAccount.org_id == org_id))).all()),
        journals=dict((await conn.execute(select(Journal.code, Journal.label))).all()),
        sites={r.id: (r.slug, r.name) for r in await conn.execute(select(Site.id, Site.slug, Site.name).where(Site.org_id == org_id))},
        grants=dict((await conn.execute(select(Grant.id, Grant.reference).where(Grant.org_id == org_id))).all()),
    )


def in_scope(query, scope: Scope):
    """Restrict a query joined on entries to the scope's validated entries."""
    return validated_entries(query, org_id=scope.org_id, site_id=scope.site_id, start=scope.start, end=scope.end)


def rows_query(scope: Scope, order: str = "number"):
    """One row per posting. ``order``: ``number`` (validation order), ``fec`` (opening
    entries first, then validation order) or ``date`` (entry date, then number)."""
    rev = Entry.__table__.alias("reversed")
    query = in_scope(
        select(
            _E.number, _E.journal_code, _E.entry_date, _E.label, _E.piece_ref, _E.piece_date, _E.validated_at,
            _E.funding_source, _E.source_key, _E.site_id, _E.grant_id, rev.c.number.label("reverses"), _E.hash,
            _P.line_no, _P.account_number, _P.aux_code, _P.amount, _P.currency, _P.label.label("line_label"),
        ).select_from(
            Entry.__table__.join(Posting.__table__, _P.entry_id == _E.id).outerjoin(rev, rev.c.id == _E.reverses_id)
        ),
        scope,
    )
    keys = {
        "number": (_E.number, _P.line_no),
        "fec": (case((_E.journal_code == "AN", 0), else_=1), _E.number, _P.line_no),
        "date": (_E.entry_date, _E.number, _P.line_no),
    }[order]
    return query.order_by(*keys)


async def count_rows(conn: AsyncConnection, scope: Scope) -> int:
    query = in_scope(select(func.count()).select_from(Entry.__table__.join(Posting.__table__, _P.entry_id == _E.id)), scope)
    return int((await conn.execute(query)).scalar_one())


async def currencies(conn: AsyncConnection, scope: Scope) -> list[str]:
    query = in_scope(
        select(_P.currency).distinct().select_from(Entry.__table__.join(Posting.__table__, _P.entry_id == _E.id)), scope
    )
    return sorted((await conn.execute(query)).scalars().all())


async def stream_rows(conn: AsyncConnection, query) -> AsyncIterator[Sequence[AnyRow]]:
    result = await conn.stream(query.execution_options(yield_per=BATCH))
    async for part in result.partitions(BATCH):
        yield part


def valid_date(validated_at: dt.datetime) -> dt.date:
    """The validation day in France (the database keeps naive UTC)."""
    return validated_at.replace(tzinfo=dt.UTC).astimezone(PARIS).date()


def stripe_id(source_key: str | None) -> str:
    return source_key[len("stripe:"):] if source_key and source_key.startswith("stripe:") else ""


# --- FEC ------------------------------------------------------------------------------


def fec_filename(scope: Scope) -> str:
    """``<SIREN>FEC<AAAAMMJJ>.txt``, the date being the period's end (for the legal file, the
    fiscal year's closing). A monthly file keeps the legal file's name, date of the fiscal
    year's closing included, and adds the month after an underscore: ``<SIREN>FEC<AAAAMMJJ>_<AAAAMM>.txt``
    — an accountant's tool sorts and recognises it, and it never poses as the year's file."""
    if scope.monthly and scope.fiscal_end is not None:
        return f"{scope.siren}FEC{scope.fiscal_end:%Y%m%d}_{scope.start:%Y%m}.txt"
    return f"{scope.siren}FEC{scope.end:%Y%m%d}.txt"


async def fiscal_numbers(conn: AsyncConnection, scope: Scope) -> dict[int, int]:
    """For a monthly FEC: each of its entries' EcritureNum in the fiscal year's legal file (the
    year's entries, organisation-wide, opening entries first, then in validation order), so
    that the months' files carry the numbers the year's file will carry. Once the month is
    closed nothing can be dated in it any more and later entries take higher ledger numbers:
    the numbers are final."""
    if scope.fiscal_start is None or scope.fiscal_end is None:
        return {}
    year = (
        select(_E.number, _E.entry_date, _E.site_id,
               func.row_number().over(order_by=(case((_E.journal_code == "AN", 0), else_=1), _E.number)).label("n"))
        .where(_E.org_id == scope.org_id, _E.number.is_not(None), _E.entry_date >= scope.fiscal_start,
               _E.entry_date <= scope.fiscal_end)
        .subquery()
    )
    query = select(year.c.number, year.c.n).where(year.c.entry_date >= scope.start, year.c.entry_date <= scope.end)
    if scope.site_id is not None:
        query = query.where(year.c.site_id == scope.site_id)
    return {int(number): int(n) for number, n in (await conn.execute(query)).all()}


def fec_text(value: str, fallback: str) -> str:
    """A text zone: breaks become spaces; a mandatory zone that would be blank gets ``fallback``."""
    return value.translate(_FEC_CLEAN) if value.strip(BREAKS + " ") else fallback


def fec_header() -> bytes:
    return (FEC_SEPARATOR.join(FEC_COLUMNS) + FEC_NEWLINE).encode()


async def check_fec_possible(conn: AsyncConnection, scope: Scope) -> None:
    # Most organisations only ever post in their own currency: on PostgreSQL a look at their
    # postings, without the join on entries that the period needs, settles it (a quarter of
    # the time). SQLite reads that through the index more slowly than the join: not there.
    if conn.dialect.name == "postgresql":
        foreign = select(Posting.id).where(Posting.org_id == scope.org_id, Posting.currency != scope.currency).limit(1)
        if (await conn.execute(foreign)).first() is None:
            return
    other = [c for c in await currencies(conn, scope) if c != scope.currency]
    if other:
        raise ExportError(
            f"le FEC est tenu en {scope.currency} : la période contient des écritures en {', '.join(other)}, "
            "exportez-la en CSV, Beancount ou hledger"
        )


async def fec_python(conn: AsyncConnection, scope: Scope, progress: Progress | None = None) -> AsyncIterator[bytes]:
    """The FEC formatted here (any database). EcritureNum numbers the file's entries from 1;
    a monthly file's, as the fiscal year's file numbers them (:func:`fiscal_numbers`)."""
    await check_fec_possible(conn, scope)
    look = await lookups(conn, scope)
    numbers = await fiscal_numbers(conn, scope) if scope.monthly else None
    yield fec_header()
    sep, num, last_number = FEC_SEPARATOR, 0, None
    current: tuple[str, ...] = ()  # the zones of the entry being written, set by its first row
    async for part in stream_rows(conn, rows_query(scope, "fec")):
        lines = []
        for r in part:
            if r.number != last_number:
                last_number = r.number
                num = numbers[r.number] if numbers is not None else num + 1
                current = (
                    r.journal_code, look.journals.get(r.journal_code, r.journal_code).translate(_FEC_CLEAN), str(num),
                    f"{r.entry_date:%Y%m%d}", fec_text(r.piece_ref, f"ECR{r.number}"), f"{r.piece_date:%Y%m%d}",
                    fec_text(r.label, f"Écriture {r.number}"), f"{valid_date(r.validated_at):%Y%m%d}",
                )
            amount, aux = r.amount, r.aux_code
            lines.append(sep.join((
                current[0], current[1], current[2], current[3], r.account_number,
                look.accounts.get(r.account_number, "").translate(_FEC_CLEAN), aux or "",
                look.aux.get(aux, "").translate(_FEC_CLEAN) if aux else "", current[4], current[5],
                fec_text(r.line_label or "", current[6]),
                format_plain(amount, r.currency) if amount > 0 else "0,00",
                format_plain(-amount, r.currency) if amount < 0 else "0,00",
                "", "", current[7], "", "",
            )))
        if progress:
            progress(len(part))
        yield (FEC_NEWLINE.join(lines) + FEC_NEWLINE).encode()


# COPY's CSV mode with a field delimiter and a quote character that cleaning removes from
# every text zone: the single column (the whole record) is never quoted nor escaped.
COPY_DELIMITER, COPY_QUOTE = "\x1c", "\x01"
_RAW_UNSAFE = COPY_DELIMITER + COPY_QUOTE + "\r\n"


def _sql_escape(chars: str) -> str:
    return "".join(f"\\x{ord(c):02x}" if ord(c) < 0x80 else f"\\u{ord(c):04x}" for c in chars)


def _sql_zone(value: str, fallback: str) -> str:
    """:func:`fec_text` in SQL: only a value holding a break is translated (a regular
    expression test costs a third of ``translate``); blank once cleaned gets ``fallback``."""
    breaks = _sql_escape(BREAKS)
    return (f"CASE WHEN {value} ~ E'[{breaks}]' THEN (CASE WHEN btrim({value}, E'{breaks} ') = '' THEN {fallback} "
            f"ELSE translate({value}, E'{breaks}', '{' ' * len(BREAKS)}') END) "
            f"WHEN btrim({value}, ' ') = '' THEN {fallback} ELSE {value} END")


def _sql_amount(cents: str) -> str:
    """A positive amount of cents with a decimal comma, from integers only."""
    return f"((({cents}) / 100)::text || ',' || lpad((({cents}) % 100)::text, 2, '0'))"


def _fec_sql(scope: Scope, look: Lookups, *, opening: bool, first: int) -> tuple[str, list]:
    """The FEC's records formatted by PostgreSQL, one text column each: the opening entries
    (AN) or the others, numbered from ``first``, in ledger order.

    Each entry's zones are formatted once, as the pieces its postings share (the part before
    the account, piece and label, the part after the amounts), in a subquery kept apart by
    OFFSET 0; a posting then costs a few concatenations. One column instead of 18 spares
    COPY a per-field cost that measured a third of the export. Labels of accounts,
    auxiliary accounts and journals, cleaned and with their separators, are looked up in
    JSON objects passed as parameters: a join on the small accounts table let the planner
    compare every posting with every account."""
    tab = "E'\\t'"
    where = "e.org_id = $1 AND e.number IS NOT NULL AND e.entry_date >= $2 AND e.entry_date <= $3"
    if scope.site_id is not None:
        where += " AND e.site_id = $8"
    where += f" AND e.journal_code {'=' if opening else '<>'} 'AN'"
    clean_code = f"translate(x.journal_code, E'{_sql_escape(BREAKS)}', '{' ' * len(BREAKS)}')"
    sql = f"""
        SELECT en.head || coalesce($5::jsonb ->> p.account_number, p.account_number || E'\\t\\t') ||
               CASE WHEN p.aux_code IS NULL THEN E'\\t\\t' ELSE coalesce($6::jsonb ->> p.aux_code, p.aux_code || E'\\t\\t') END ||
               CASE WHEN p.label IS NULL THEN en.mid || en.label ELSE en.mid || {_sql_zone("p.label", "en.label")} END ||
               CASE WHEN p.amount > 0 THEN {tab} || {_sql_amount("p.amount")} || E'\\t0,00' || en.tail
                    WHEN p.amount < 0 THEN E'\\t0,00\\t' || {_sql_amount("-p.amount")} || en.tail
                    ELSE E'\\t0,00\\t0,00' || en.tail END
        FROM (
            SELECT x.id, x.number,
                   coalesce($7::jsonb ->> x.journal_code, x.journal_code || {tab} || {clean_code} || {tab}) ||
                   ($4::bigint - 1 + row_number() OVER (ORDER BY x.number))::text || {tab} || x.entry_day || {tab} AS head,
                   x.mid, x.label, x.tail
            FROM (
                SELECT e.id, e.number, e.journal_code, to_char(e.entry_date, 'YYYYMMDD') AS entry_day,
                       {_sql_zone("e.piece_ref", "'ECR' || e.number")} || {tab} || to_char(e.piece_date, 'YYYYMMDD') || {tab} AS mid,
                       {_sql_zone("e.label", "'Écriture ' || e.number")} AS label,
                       E'\\t\\t\\t' || to_char((e.validated_at AT TIME ZONE 'UTC') AT TIME ZONE 'Europe/Paris', 'YYYYMMDD')
                         || E'\\t\\t' AS tail
                FROM entries e WHERE {where}
                OFFSET 0
            ) x
        ) en
        JOIN postings p ON p.entry_id = en.id
        ORDER BY en.number, p.line_no
    """  # noqa: S608 (every interpolated part is built here from constants, never input; every value is a $n parameter)
    labels = [json.dumps({k: f"{k}\t{v.translate(_FEC_CLEAN)}\t" for k, v in table.items() if k}, ensure_ascii=False)
              for table in (look.accounts, look.aux, look.journals)]
    args = [scope.org_id, scope.start, scope.end, first, *labels] + ([scope.site_id] if scope.site_id is not None else [])
    return sql, args


def _copy_safe(look: Lookups) -> bool:
    """Codes go out uncleaned, as in :func:`fec_python`: one holding the COPY delimiter,
    quote or a line break would be quoted by COPY, so Python formats such a ledger."""
    return not any(set(code) & set(_RAW_UNSAFE) for table in (look.accounts, look.aux, look.journals) for code in table)


async def _fec_parts(conn: AsyncConnection, scope: Scope) -> list[tuple[str, list]] | None:
    look = await lookups(conn, scope)
    if not _copy_safe(look):
        return None
    openings = int((await conn.execute(
        in_scope(select(func.count()).select_from(Entry.__table__), scope).where(_E.journal_code == "AN"))).scalar_one())
    parts = [_fec_sql(scope, look, opening=True, first=1)] if openings else []
    return [*parts, _fec_sql(scope, look, opening=False, first=openings + 1)]


async def fec_copy(conn: AsyncConnection, scope: Scope, progress: Progress | None = None) -> AsyncIterator[bytes]:
    """The FEC formatted by PostgreSQL and streamed by ``COPY … TO STDOUT`` (same bytes as :func:`fec_python`).

    CSV mode, one column per record, with a delimiter and a quote character that cleaning
    removes from every zone: nothing is ever quoted or escaped. The driver's small chunks
    are gathered into blocks of about 1 MiB. A monthly file (a month's entries, numbered as
    in the year's file) is formatted by Python."""
    if exponent(scope.currency) != 2 or scope.monthly:
        async for chunk in fec_python(conn, scope, progress):
            yield chunk
        return
    await check_fec_possible(conn, scope)
    parts = await _fec_parts(conn, scope)
    if parts is None:
        async for chunk in fec_python(conn, scope, progress):
            yield chunk
        return
    # Formatting a million rows is cheap per row; compiling it with JIT is not.
    await conn.execute(text("SET LOCAL jit = off"))
    raw = (await conn.get_raw_connection()).driver_connection
    if raw is None:  # only once the connection is closed, which it is not while in use
        raise RuntimeError("the database connection has no driver connection")
    queue: asyncio.Queue = asyncio.Queue(maxsize=8)
    done = object()
    block = bytearray()

    async def sink(data: bytes) -> None:
        block.extend(data)
        if len(block) >= BLOCK:
            await queue.put(bytes(block))
            block.clear()

    async def run() -> None:
        try:
            for sql, args in parts:  # the opening entries first
                await raw.copy_from_query(sql, *args, output=sink, format="csv", delimiter=COPY_DELIMITER, quote=COPY_QUOTE)
            if block:
                await queue.put(bytes(block))
            await queue.put(done)
        except BaseException as exc:  # handed to the consumer, which raises it
            await queue.put(exc)

    yield fec_header()
    task = asyncio.create_task(run())
    try:
        while True:
            item = await queue.get()
            if item is done:
                break
            if isinstance(item, BaseException):
                raise item
            if progress:
                progress(item.count(b"\n"))
            yield item
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


async def fec(conn: AsyncConnection, scope: Scope, progress: Progress | None = None) -> AsyncIterator[bytes]:
    maker = fec_copy if conn.dialect.name == "postgresql" else fec_python
    async for chunk in maker(conn, scope, progress):
        yield chunk


# --- FEC in ISO 8859-15 ---------------------------------------------------------------------

LATIN9 = "iso-8859-15"
# What NFKD does not bring into ISO 8859-15. NFKD handles accented letters outside it
# ("ă" → "a"), ligatures ("ﬁ" → "fi"), full-width and super/subscript forms.
TRANSLITERATIONS = str.maketrans({
    "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ħ": "h", "Ħ": "H", "ı": "i", "ŀ": "l", "Ŀ": "L", "ŧ": "t", "Ŧ": "T",
    "ſ": "s", "ƒ": "f", "ə": "e", "Ə": "E", "ŋ": "n", "Ŋ": "N",
    "‘": "'", "’": "'", "‚": "'", "‛": "'", "′": "'", "“": '"', "”": '"', "„": '"', "‟": '"', "″": '"',
    "‹": "<", "›": ">", "–": "-", "—": "-", "―": "-", "‐": "-", "‑": "-", "‒": "-", "−": "-",
    "…": "...", "•": "-", "¤": "?", "¦": "|", "¨": '"', "´": "'", "¸": ",",
    "¼": "1/4", "½": "1/2", "¾": "3/4", "⁄": "/", "™": "TM", "℠": "SM", "№": "No",
    "\u2009": " ", "\u200a": " ", "\u202f": "\u00a0", "\u2007": " ", "\u2002": " ", "\u2003": " ",
    "\u200b": "", "\u200c": "", "\u200d": "", "\u2060": "", "\ufeff": "",
})


def _encodable(char: str) -> bool:
    try:
        char.encode(LATIN9)
    except UnicodeEncodeError:
        return False
    return True


def latin9_text(value: str) -> str:
    """``value`` with every character outside ISO 8859-15 replaced: by the table above, else by
    its compatibility decomposition without accents (NFKD), else by "?" (emoji, CJK…)."""
    out = []
    for char in value:
        if _encodable(char):
            out.append(char)
            continue
        mapped = char.translate(TRANSLITERATIONS)
        if mapped != char:
            out.append(mapped)
            continue
        parts = [c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)]
        parts = [p if _encodable(p) else p.translate(TRANSLITERATIONS) for p in parts]
        decomposed = "".join(parts)
        out.append(decomposed if decomposed and all(_encodable(c) for c in decomposed) and decomposed.translate(_FEC_CLEAN) == decomposed
                   else "?")
    return "".join(out)


@dataclass
class Transliterated:
    """How many text zones of a FEC written in ISO 8859-15 had characters replaced."""

    zones: int = 0


async def fec_latin9(conn: AsyncConnection, scope: Scope, progress: Progress | None = None,
                     notes: Transliterated | None = None) -> AsyncIterator[bytes]:
    """The FEC (either path, same UTF-8 bytes) written in ISO 8859-15, one of the encodings the
    DGFiP lists; each zone holding a character outside it is transliterated
    (:func:`latin9_text`) and counted in ``notes``. Records are re-encoded whole: a chunk's
    unfinished last record waits for the next chunk."""
    rest = b""
    async for chunk in fec(conn, scope, progress):
        data = rest + chunk
        cut = data.rfind(b"\n") + 1
        data, rest = data[:cut], data[cut:]
        if not data:
            continue
        text_ = data.decode()
        try:
            yield text_.encode(LATIN9)
            continue
        except UnicodeEncodeError:
            pass
        lines = []
        for line in text_.split(FEC_NEWLINE):
            zones = line.split(FEC_SEPARATOR)
            for i, zone in enumerate(zones):
                clean = latin9_text(zone)
                if not clean.strip() and zone.strip():  # only zero-width characters: a zone never goes blank
                    clean = "?"
                if clean != zone:
                    zones[i] = clean
                    if notes is not None:
                        notes.zones += 1
            lines.append(FEC_SEPARATOR.join(zones))
        yield FEC_NEWLINE.join(lines).encode(LATIN9)
    if rest:  # every record ends with a line feed: never happens
        raise RuntimeError("the FEC ended in the middle of a record")


# --- CSV general journal ----------------------------------------------------------------


async def journal_csv(conn: AsyncConnection, scope: Scope, progress: Progress | None = None) -> AsyncIterator[bytes]:
    """One row per posting, ``;``-separated, decimal comma, UTF-8 with a BOM (Excel opens it as is)."""
    look = await lookups(conn, scope)
    buf = io.StringIO()
    writer = csvout.writer(buf, delimiter=";", lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    yield ("\ufeff" + buf.getvalue()).encode()
    async for part in stream_rows(conn, rows_query(scope, "number")):
        buf.seek(0)
        buf.truncate()
        for r in part:
            slug, site_name = look.sites.get(r.site_id, ("", ""))
            writer.writerow((
                r.number, r.journal_code, look.journals.get(r.journal_code, ""), r.entry_date.isoformat(), r.piece_ref,
                r.piece_date.isoformat(), r.line_label or r.label, r.line_no, r.account_number,
                look.accounts.get(r.account_number, ""), r.aux_code or "", look.aux.get(r.aux_code, "") if r.aux_code else "",
                format_plain(r.amount, r.currency) if r.amount > 0 else "", format_plain(-r.amount, r.currency) if r.amount < 0 else "",
                r.currency, slug, site_name, r.funding_source, stripe_id(r.source_key), r.source_key or "",
                look.grants.get(r.grant_id, "") if r.grant_id else "", r.reverses or "",
                r.validated_at.strftime("%Y-%m-%dT%H:%M:%SZ"), r.hash,
            ))
        if progress:
            progress(len(part))
        yield buf.getvalue().encode()
