"""The ledger's rules: post (validate and number), reverse, close, trial balance.

Services flush, the caller commits. Posting takes the organisation's chain head
``FOR UPDATE``: numbering and chaining are serialised per organisation, so concurrent
validations never leave a gap or a duplicate (the database triggers check it again).
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import BigInteger, Date, String, case, cast, func, insert, literal, select, text, union_all, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from funding.clock import local_day
from funding.db import AnyRow, AnySelect, dialect_insert, dialect_of, plan_each_statement, utcnow
from funding.errors import FundingError
from funding.ledger.canonical import chain_hash, closing_hash, entry_document
from funding.ledger.chart import DEFAULT_CHART, JOURNALS
from funding.ledger.models import (
    ENTRY_KEYS,
    FUNDING_SOURCES,
    GENESIS_HASH,
    Account,
    AuxAccount,
    Closing,
    ClosingKind,
    Entry,
    FundingSource,
    LedgerHead,
    Posting,
    SealKind,
)
from funding.money import MAX_AMOUNT, MoneyError, check_currency

if TYPE_CHECKING:
    from funding.orgs.models import Organisation

SelectT = TypeVar("SelectT", bound=AnySelect)


class LedgerError(FundingError):
    """A refused ledger operation. The message says why, for a person."""


@dataclass(frozen=True)
class Line:
    account: str
    amount: int  # signed minor units: debit > 0, credit < 0
    currency: str = "EUR"
    aux: str | None = None
    label: str | None = None


def debit(account: str, amount: int, currency: str = "EUR", *, aux: str | None = None, label: str | None = None) -> Line:
    return Line(account, amount, currency, aux, label)


def credit(account: str, amount: int, currency: str = "EUR", *, aux: str | None = None, label: str | None = None) -> Line:
    return Line(account, -amount, currency, aux, label)


@dataclass
class EntryDraft:
    org_id: int
    site_id: int
    journal: str
    entry_date: dt.date
    label: str
    piece_ref: str
    funding_source: str
    lines: list[Line]
    piece_date: dt.date | None = None
    source_key: str | None = None
    grant_id: int | None = None
    reverses_id: int | None = None
    created_by: str = ""


@dataclass(frozen=True)
class Posted:
    id: int
    number: int
    hash: str
    source_key: str | None
    created: bool = True  # False when an entry with this source key already existed


@dataclass
class PostResult:
    entries: list[Posted] = field(default_factory=list)

    @property
    def created(self) -> list[Posted]:
        return [e for e in self.entries if e.created]


def check_draft(draft: EntryDraft, *, today: dt.date) -> None:
    """Everything that can be checked without the database."""
    if draft.journal not in JOURNALS:
        raise LedgerError(f"journal inconnu : {draft.journal}")
    if draft.funding_source not in FUNDING_SOURCES:
        raise LedgerError(f"origine des fonds inconnue : {draft.funding_source}")
    if not (draft.label or "").strip():
        raise LedgerError("une écriture a besoin d'un libellé")
    if not (draft.piece_ref or "").strip():
        raise LedgerError("une écriture a besoin d'une référence de pièce")
    if draft.entry_date > today:
        raise LedgerError(f"date future refusée : {draft.entry_date.isoformat()}")
    if len(draft.lines) < 2:
        raise LedgerError("une écriture a besoin d'au moins deux lignes")
    totals: dict[str, int] = defaultdict(int)
    for line in draft.lines:
        if not isinstance(line.amount, int) or isinstance(line.amount, bool):
            raise LedgerError(f"montant non entier sur le compte {line.account} : les montants sont en centimes")
        if line.amount == 0:
            raise LedgerError(f"ligne à zéro sur le compte {line.account}")
        if abs(line.amount) > MAX_AMOUNT:
            raise LedgerError(f"montant trop grand sur le compte {line.account} : au plus {MAX_AMOUNT} unités mineures par ligne")
        try:
            check_currency(line.currency)
        except MoneyError as exc:
            raise LedgerError(str(exc)) from None
        totals[line.currency] += line.amount
    unbalanced = {cur: total for cur, total in totals.items() if total}
    if unbalanced:
        detail = ", ".join(f"{cur} {total:+d}" for cur, total in sorted(unbalanced.items()))
        raise LedgerError(f"écriture déséquilibrée : débit et crédit diffèrent ({detail} centimes)")


async def ensure_ledger(session: AsyncSession, org_id: int) -> None:
    """Seed a new organisation's chart of accounts and its chain head."""
    existing = set((await session.scalars(select(Account.number).where(Account.org_id == org_id))).all())
    session.add_all(
        Account(org_id=org_id, number=number, label=label) for number, label in DEFAULT_CHART if number not in existing
    )
    if await session.get(LedgerHead, org_id) is None:
        session.add(LedgerHead(org_id=org_id, last_number=0, last_hash=GENESIS_HASH, last_closing_hash=GENESIS_HASH))
    await session.flush()


async def _lock_head(session: AsyncSession, org_id: int) -> LedgerHead:
    head = (
        await session.execute(
            select(LedgerHead).where(LedgerHead.org_id == org_id).with_for_update().execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    if head is None:
        raise LedgerError(f"l'organisation {org_id} n'a pas de comptabilité")
    return head


def expect_aux_account(session: AsyncSession, org_id: int, code: str, label: str) -> None:
    """Ask for ``org_id``'s auxiliary account ``code`` to exist by the time an entry of this
    transaction names it: the organisation's next posting inserts every one asked for (missing
    ones, labelled as first asked; existing ones untouched) in one statement before it reads,
    instead of one round trip each when asked (a batch of invoices names a member's account each).
    What a transaction asked for goes with it if it ends without posting; the posting still
    refuses an auxiliary account that neither exists nor was asked for."""
    root = session.sync_session.get_transaction()
    held = session.info.get("aux_expected")
    if held is None or held[0] is not root:
        expected: defaultdict[int, dict[str, str]] = defaultdict(dict)
        held = session.info["aux_expected"] = (root, expected)
    held[1][org_id].setdefault(code, label[:200])


async def _write_expected_aux(session: AsyncSession, org_id: int) -> None:
    held = session.info.get("aux_expected")
    if held is None or held[0] is not session.sync_session.get_transaction():
        return
    expected = held[1].pop(org_id, None)
    if expected:
        now = utcnow()
        await session.execute(dialect_insert(dialect_of(session))(AuxAccount).values(
            [{"org_id": org_id, "code": code, "label": label, "created_at": now} for code, label in sorted(expected.items())]
        ).on_conflict_do_nothing(index_elements=["org_id", "code"]))


async def check_references(session: AsyncSession, org_id: int, drafts: Sequence[EntryDraft]) -> tuple[dt.date | None, dict[str, Posted]]:
    """What posting reads before it writes, in one round trip: the drafts' accounts (known and
    active) and auxiliary accounts, the organisation's closed period, and the entries already
    posted under the drafts' source keys. Refuses unknown accounts; returns (closed through,
    existing entries by key)."""
    accounts = sorted({line.account for d in drafts for line in d.lines})
    auxes = sorted({line.aux for d in drafts for line in d.lines if line.aux})
    keys = sorted({d.source_key for d in drafts if d.source_key})
    none_int, none_text = cast(literal(None), BigInteger), cast(literal(None), String)
    parts: list[Any] = [
        select(literal("closed"), none_text, none_int, none_int, none_text, LedgerHead.closed_through)
        .where(LedgerHead.org_id == org_id),
        select(literal("account"), Account.number, none_int, none_int, none_text, cast(literal(None), Date))
        .where(Account.org_id == org_id, Account.number.in_(accounts), Account.active),
    ]
    if auxes:
        parts.append(select(literal("aux"), AuxAccount.code, none_int, none_int, none_text, cast(literal(None), Date))
                     .where(AuxAccount.org_id == org_id, AuxAccount.code.in_(auxes)))
    if keys:
        parts.append(select(literal("key"), Entry.source_key, Entry.id, Entry.number, Entry.hash, cast(literal(None), Date))
                     .where(Entry.org_id == org_id, Entry.source_key.in_(keys)))
    rows = (await session.execute(union_all(*parts))).all()
    known = {r[1] for r in rows if r[0] == "account"}
    missing = sorted(set(accounts) - known)
    if missing:
        raise LedgerError(f"compte inconnu ou inactif : {', '.join(missing)}")
    known_aux = {r[1] for r in rows if r[0] == "aux"}
    if set(auxes) - known_aux:
        raise LedgerError(f"compte auxiliaire inconnu : {', '.join(sorted(set(auxes) - known_aux))}")
    closed = next((r[5] for r in rows if r[0] == "closed"), None)
    if isinstance(closed, str):  # SQLite hands a date of a UNION back as its text
        closed = dt.date.fromisoformat(closed)
    existing = {r[1]: Posted(r[2], r[3], r[4], r[1], created=False) for r in rows if r[0] == "key"}
    return closed, existing


async def post(
    session: AsyncSession,
    drafts: Sequence[EntryDraft] | EntryDraft,
    *,
    now: dt.datetime | None = None,
) -> PostResult:
    """Validate, number and chain entries, all in the caller's transaction.

    An entry whose ``source_key`` is already in the ledger is not posted again: the
    existing one is returned with ``created=False``. That is what makes an effect keyed
    by a Stripe object id happen once, whichever path gets there first.
    """
    if isinstance(drafts, EntryDraft):
        drafts = [drafts]
    now = now or utcnow()
    result = PostResult()
    by_org: dict[int, list[EntryDraft]] = defaultdict(list)
    for draft in drafts:
        check_draft(draft, today=local_day(now))  # an entry's date is a Paris day (funding.clock)
        by_org[draft.org_id].append(draft)
    for org_id, org_drafts in by_org.items():
        result.entries.extend(await _post_org(session, org_id, org_drafts, now))
    return result


# The column names and types interpolated into _PG_POSTINGS and _PG_VALIDATE are these constants, never input.
_POSTING_COLUMNS = {"entry_id": "bigint", "org_id": "bigint", "line_no": "smallint", "account_number": "varchar",
                    "aux_code": "varchar", "amount": "bigint", "currency": "varchar", "label": "varchar"}
_PG_POSTINGS = text(
    f"INSERT INTO postings ({', '.join(_POSTING_COLUMNS)}) SELECT * FROM unnest("  # noqa: S608  (constants, no input)
    + ", ".join(f"CAST(:{k} AS {t}[])" for k, t in _POSTING_COLUMNS.items()) + ")"
)

BATCH = 20  # entries from which a posting is a batch (see _post_org)
_DEFER_ENTRY_KEYS = text(f"SET CONSTRAINTS {', '.join(ENTRY_KEYS)} DEFERRED")
_CHECK_ENTRY_KEYS = text(f"SET CONSTRAINTS {', '.join(ENTRY_KEYS)} IMMEDIATE")

_VALIDATE_COLUMNS = {"id": "bigint", "number": "bigint", "prev_hash": "varchar", "hash": "varchar"}
_PG_VALIDATE = text(
    "UPDATE entries SET number = v.number, prev_hash = v.prev_hash, hash = v.hash, validated_at = :now "  # noqa: S608  (constants)
    "FROM unnest("
    + ", ".join(f"CAST(:{k} AS {t}[])" for k, t in _VALIDATE_COLUMNS.items())
    + f") AS v({', '.join(_VALIDATE_COLUMNS)}) WHERE entries.id = v.id"
)


async def _post_org(session: AsyncSession, org_id: int, drafts: list[EntryDraft], now: dt.datetime) -> list[Posted]:
    """Post one organisation's drafts. Everything that can be done without the ledger's head
    lock is done before it — checks, inserting the drafts and their postings (unnumbered,
    invisible to others until commit) — because every poster of the organisation waits for
    that lock; under it, only numbering and chaining. All of it runs in a savepoint, so a
    refusal leaves nothing behind even if the caller goes on with its transaction."""
    await _write_expected_aux(session, org_id)
    closed, existing = await check_references(session, org_id, drafts)
    _check_open(drafts, closed)
    out: list[Posted] = []
    todo: list[EntryDraft] = []
    seen: set[str] = set()
    for draft in drafts:
        if draft.source_key and (draft.source_key in existing or draft.source_key in seen):
            if draft.source_key in existing:
                out.append(existing[draft.source_key])
            continue
        if draft.source_key:
            seen.add(draft.source_key)
        todo.append(draft)
    if not todo:
        return out

    pg = dialect_of(session) == "postgresql"
    # A batch has its entries' keys checked once, on the numbered rows, when they are set back to
    # immediate below (an inserted row updated since is skipped by the deferred check), and every
    # statement planned for its size. A few entries are checked twice (a probe of three keys
    # each), cheaper than the two round trips; their plans are those of lookups by key.
    batch = pg and len(todo) >= BATCH
    try:
        async with session.begin_nested():
            if batch:
                await plan_each_statement(session)
                await session.execute(_DEFER_ENTRY_KEYS)
            inserted = await _insert_drafts(session, org_id, todo, now)
            # A key that another transaction committed meanwhile: its entry is the one.
            lost = [d.source_key for d, i in zip(todo, inserted, strict=True) if i is None and d.source_key]
            if lost:
                late = await _existing(session, org_id, lost)
                out.extend(late[k] for k in lost if k in late)
                todo = [d for d, i in zip(todo, inserted, strict=True) if i is not None]
            ids = [i for i in inserted if i is not None]
            if not todo:
                return out
            rows = [
                {
                    "entry_id": entry_id,
                    "org_id": org_id,
                    "line_no": n,
                    "account_number": line.account,
                    "aux_code": line.aux,
                    "amount": line.amount,
                    "currency": line.currency,
                    "label": line.label,
                }
                for entry_id, d in zip(ids, todo, strict=True)
                for n, line in enumerate(d.lines, start=1)
            ]
            if pg:
                # One statement for the whole batch, so the statement-level guard checks it at once.
                await session.execute(_PG_POSTINGS, {k: [r[k] for r in rows] for k in _POSTING_COLUMNS})
            else:
                # Core insert with every column rendered (the ORM splits a batch wherever a line
                # has a label and the next has none).
                await session.execute(insert(Posting.__table__), rows)

            head = await _lock_head(session, org_id)
            _check_open(todo, head.closed_through)  # a month closed while we prepared
            number, prev = head.last_number, head.last_hash
            validations = []
            for entry_id, d in zip(ids, todo, strict=True):
                number += 1
                doc = entry_document(
                    org_id=org_id,
                    number=number,
                    journal=d.journal,
                    entry_date=d.entry_date,
                    label=d.label.strip()[:200],
                    piece_ref=d.piece_ref.strip()[:100],
                    piece_date=d.piece_date or d.entry_date,
                    site_id=d.site_id,
                    funding_source=d.funding_source,
                    reverses_id=d.reverses_id,
                    source_key=d.source_key,
                    grant_id=d.grant_id,
                    validated_at=now,
                    postings=[(n, ln.account, ln.aux, ln.amount, ln.currency, ln.label) for n, ln in enumerate(d.lines, 1)],
                )
                digest = chain_hash(prev, doc)
                validations.append({"id": entry_id, "number": number, "prev_hash": prev, "hash": digest, "validated_at": now})
                out.append(Posted(entry_id, number, digest, d.source_key))
                prev = digest
            if pg:
                # One statement, so the database validates the batch and moves the head once.
                await session.execute(_PG_VALIDATE, {"now": now, **{k: [v[k] for v in validations] for k in _VALIDATE_COLUMNS}})
                if batch:
                    await session.execute(_CHECK_ENTRY_KEYS)
                    batch = False
            else:
                await session.execute(update(Entry), validations)
    except IntegrityError as exc:
        raise LedgerError(explain_db_error(exc)) from exc
    finally:
        if batch and session.in_transaction():
            await session.execute(_CHECK_ENTRY_KEYS)  # never leave them deferred for the caller
    # The triggers advanced the head; keep the identity map in step with them (no UPDATE of ours).
    set_committed_value(head, "last_number", number)
    set_committed_value(head, "last_hash", prev)
    return out


def _check_open(drafts: Sequence[EntryDraft], closed_through: dt.date | None) -> None:
    for draft in drafts:
        if closed_through and draft.entry_date <= closed_through:
            raise LedgerError(
                f"période close jusqu'au {closed_through.isoformat()} : "
                f"impossible de passer une écriture datée du {draft.entry_date.isoformat()}"
            )


async def _existing(session: AsyncSession, org_id: int, keys: list[str]) -> dict[str, Posted]:
    """Entries already posted under these source keys (committed, or by this transaction)."""
    if not keys:
        return {}
    rows = await session.execute(
        select(Entry.id, Entry.number, Entry.hash, Entry.source_key).where(Entry.org_id == org_id, Entry.source_key.in_(keys))
    )
    return {r.source_key: Posted(r.id, r.number, r.hash, r.source_key, created=False) for r in rows}


def _entry_row(org_id: int, d: EntryDraft, now: dt.datetime) -> dict[str, Any]:
    return {
        "org_id": org_id,
        "site_id": d.site_id,
        "journal_code": d.journal,
        "entry_date": d.entry_date,
        "label": d.label.strip()[:200],
        "piece_ref": d.piece_ref.strip()[:100],
        "piece_date": d.piece_date or d.entry_date,
        "funding_source": d.funding_source,
        "reverses_id": d.reverses_id,
        "source_key": d.source_key,
        "grant_id": d.grant_id,
        "created_by": d.created_by,
        "created_at": now,
    }


async def _insert_drafts(session: AsyncSession, org_id: int, todo: list[EntryDraft], now: dt.datetime) -> list[int | None]:
    """Insert the drafts unnumbered; returns their ids in order, None for a draft whose source
    key another transaction posted first. Keyed drafts go in key order with ON CONFLICT DO
    NOTHING: two transactions holding the same keys wait for each other in the same order (no
    deadlock) and the second one skips what the first one posted."""
    ids: list[int | None] = [None] * len(todo)
    keyed = sorted((i for i, d in enumerate(todo) if d.source_key), key=lambda i: todo[i].source_key or "")
    plain = [i for i, d in enumerate(todo) if not d.source_key]
    if keyed:
        upsert = dialect_insert(dialect_of(session))
        stmt = (upsert(Entry.__table__).on_conflict_do_nothing(index_elements=["org_id", "source_key"])
                .returning(Entry.__table__.c.id, Entry.__table__.c.source_key))
        got = {key: entry_id for entry_id, key in (await session.execute(stmt, [_entry_row(org_id, todo[i], now) for i in keyed])).all()}
        for i in keyed:
            ids[i] = got.get(todo[i].source_key)
    if plain:
        new = (await session.scalars(insert(Entry).returning(Entry.id, sort_by_parameter_order=True),
                                     [_entry_row(org_id, todo[i], now) for i in plain])).all()
        for i, entry_id in zip(plain, new, strict=True):
            ids[i] = entry_id
    return ids


def explain_db_error(exc: DBAPIError) -> str:
    """Turn a refusal raised by a ledger trigger or constraint into its message."""
    text = str(exc.orig) if exc.orig is not None else str(exc)
    for line in text.splitlines():
        if "ledger:" in line:
            return line[line.index("ledger:") :].strip()
    if "source_key" in text:
        return "ledger: cette opération est déjà comptabilisée"
    if "reverses_id" in text:
        return "ledger: cette écriture a déjà été contrepassée"
    if "FOREIGN KEY" in text.upper() or "foreign key" in text:
        return "ledger: référence inconnue (compte, site ou écriture)"
    return "ledger: opération refusée par la base de données"


async def reverse(
    session: AsyncSession,
    org_id: int,
    number: int,
    *,
    reason: str,
    entry_date: dt.date | None = None,
    created_by: str = "",
    now: dt.datetime | None = None,
) -> Posted:
    """Cancel a validated entry with its mirror image, referencing the original."""
    now = now or utcnow()
    original = await session.scalar(select(Entry).where(Entry.org_id == org_id, Entry.number == number))
    if original is None:
        raise LedgerError(f"écriture n° {number} introuvable")
    if original.reverses_id is not None:
        raise LedgerError(f"l'écriture n° {number} est déjà une contrepassation")
    already = await session.scalar(select(Entry.number).where(Entry.reverses_id == original.id))
    if already is not None:
        raise LedgerError(f"l'écriture n° {number} a déjà été contrepassée par l'écriture n° {already}")
    if not (reason or "").strip():
        raise LedgerError("indiquez le motif de la contrepassation")
    draft = await mirror_of(session, original, label=f"Annulation écr. {number} : {reason.strip()}",
                            entry_date=entry_date or local_day(now), created_by=created_by)
    return (await post(session, draft, now=now)).entries[0]


async def mirror_of(session: AsyncSession, original: Entry, *, label: str, entry_date: dt.date, source_key: str | None = None,
                    created_by: str = "") -> EntryDraft:
    """The reversing entry of ``original``: the same lines, signs swapped, referencing it."""
    lines = (await session.scalars(select(Posting).where(Posting.entry_id == original.id).order_by(Posting.line_no))).all()
    return EntryDraft(
        org_id=original.org_id,
        site_id=original.site_id,
        journal=original.journal_code,
        entry_date=entry_date,
        label=label[:200],
        piece_ref=original.piece_ref,
        piece_date=original.piece_date,
        funding_source=original.funding_source,
        lines=[Line(p.account_number, -p.amount, p.currency, p.aux_code, p.label) for p in lines],
        reverses_id=original.id,
        grant_id=original.grant_id,
        source_key=source_key,
        created_by=created_by,
    )


async def reversal_by_key(session: AsyncSession, org_id: int, original_key: str, *, key: str, label: str,
                          entry_date: dt.date) -> EntryDraft | None:
    """The reversing entry (keyed ``key``) of the entry keyed ``original_key``, if that one is in
    the books and not reversed yet; None otherwise."""
    original = await session.scalar(select(Entry).where(Entry.org_id == org_id, Entry.source_key == original_key))
    if original is None or await session.scalar(select(Entry.id).where(Entry.reverses_id == original.id)) is not None:
        return None
    return await mirror_of(session, original, label=label, entry_date=entry_date, source_key=key)


# --- closings ---------------------------------------------------------------------


def month_bounds(period: str) -> tuple[dt.date, dt.date]:
    try:
        year, month = (int(x) for x in period.split("-"))
        start = dt.date(year, month, 1)
    except (ValueError, TypeError, OverflowError):
        raise LedgerError(f"période invalide : {period!r} (attendu AAAA-MM, par exemple 2026-11)") from None
    return start, dt.date(year, month, calendar.monthrange(year, month)[1])


def fiscal_year_start(day: dt.date, start_month: int) -> dt.date:
    year = day.year if day.month >= start_month else day.year - 1
    return dt.date(year, start_month, 1)


_fiscal_year_start = fiscal_year_start  # its earlier private name


def fiscal_year_bounds(year: int, start_month: int) -> tuple[dt.date, dt.date]:
    """First and last day of the fiscal year named ``year`` (the year it starts in)."""
    start = dt.date(year, start_month, 1)
    following = dt.date(year + 1, start_month, 1)
    return start, following - dt.timedelta(days=1)


def fiscal_year_of(day: dt.date, start_month: int) -> int:
    """The name of the fiscal year ``day`` belongs to: the calendar year it starts in."""
    return fiscal_year_start(day, start_month).year


def year_label(year: int, start_month: int) -> str:
    """How people name a fiscal year: ``2026``, or ``2025-2026`` when it straddles two."""
    return str(year) if start_month == 1 else f"{year}-{year + 1}"


def parse_year(text_: str | int) -> int:
    try:
        year = int(str(text_).strip())
    except ValueError:
        year = 0
    if not 1900 <= year <= 9999:
        raise LedgerError(f"exercice invalide : {text_!r} (attendu AAAA, l'année où il commence, par exemple 2026)")
    return year


async def year_closing(session: AsyncSession, org_id: int, year: int) -> Closing | None:
    return await session.scalar(
        select(Closing).where(Closing.org_id == org_id, Closing.kind == ClosingKind.YEAR, Closing.period == str(year)))


async def _has_entries_before(session: AsyncSession, org_id: int, day: dt.date) -> bool:
    first = await session.scalar(
        select(Entry.id).where(Entry.org_id == org_id, Entry.number.is_not(None), Entry.entry_date < day).limit(1))
    return first is not None


@dataclass
class _Totals:
    totals: dict[str, list[int]]
    period_total: dict[str, int]
    first_number: int | None
    last_number: int | None
    count: int


async def _period_totals(session: AsyncSession, org_id: int, start: dt.date, end: dt.date) -> _Totals:
    rows = (
        await session.execute(
            select(
                Posting.account_number,
                Posting.currency,
                func.sum(case((Posting.amount > 0, Posting.amount), else_=0)).label("debit"),
                func.sum(case((Posting.amount < 0, -Posting.amount), else_=0)).label("credit"),
            )
            .join(Entry, Entry.id == Posting.entry_id)
            .where(Entry.org_id == org_id, Entry.number.is_not(None), Entry.entry_date.between(start, end))
            .group_by(Posting.account_number, Posting.currency)
            .order_by(Posting.account_number, Posting.currency)
        )
    ).all()
    totals = {f"{r.account_number}|{r.currency}": [int(r.debit or 0), int(r.credit or 0)] for r in rows}
    period_total: dict[str, int] = defaultdict(int)
    for r in rows:
        period_total[r.currency] += int(r.debit or 0)
    numbers = (
        await session.execute(
            select(func.min(Entry.number), func.max(Entry.number), func.count(Entry.id)).where(
                Entry.org_id == org_id, Entry.number.is_not(None), Entry.entry_date.between(start, end)
            )
        )
    ).one()
    return _Totals(totals, dict(period_total), numbers[0], numbers[1], int(numbers[2]))


async def _store_closing(session: AsyncSession, org: Organisation, head: LedgerHead, closing: Closing,
                         seal_kind: SealKind, now: dt.datetime) -> Closing:
    closing.hash = closing_hash(closing)
    session.add(closing)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise LedgerError(explain_db_error(exc)) from exc
    # The database's trigger moved the head; keep the identity map in step (no UPDATE of ours).
    set_committed_value(head, "closed_through", closing.end_date)
    set_committed_value(head, "last_closing_hash", closing.hash)
    from funding.ledger.seals import SealError, seal

    try:
        await seal(session, org.id, kind=seal_kind, period=closing.period, now=now)
    except SealError as exc:
        raise LedgerError(str(exc)) from None
    return closing


# What a fiscal year's last month posts before it closes (funding.ledger.yearend registers its
# year-end entries here when the package loads: the ledger's core never imports it).
YEAR_END: list[Callable[[AsyncSession, int, dt.date, dt.date, dt.datetime], Awaitable[object]]] = []


async def close_month(
    session: AsyncSession,
    org_id: int,
    period: str,
    *,
    closed_by: str = "",
    now: dt.datetime | None = None,
) -> Closing:
    """Close a month: store its totals and the running totals, chained. Months close in order,
    and the first month of a fiscal year only once the year before it is closed (its
    à-nouveaux are dated that month's first day)."""
    from funding.orgs.models import Organisation

    now = now or utcnow()
    start, end = month_bounds(period)
    if end >= local_day(now):
        raise LedgerError(f"le mois {period} n'est pas terminé : il se clôt à partir du {(end + dt.timedelta(days=1)).isoformat()}")
    org = await session.get(Organisation, org_id)
    if org is None:
        raise LedgerError(f"organisation {org_id} inconnue")
    head = await _lock_head(session, org_id)
    if head.closed_through is not None:
        expected = head.closed_through + dt.timedelta(days=1)
        if start < expected:
            raise LedgerError(f"le mois {period} est déjà clos")
        if start > expected:
            raise LedgerError(f"clôturez d'abord {expected.strftime('%Y-%m')} : les mois se clôturent dans l'ordre")
    else:
        earlier = await session.scalar(
            select(func.min(Entry.entry_date)).where(Entry.org_id == org_id, Entry.number.is_not(None), Entry.entry_date < start)
        )
        if earlier is not None:
            raise LedgerError(f"clôturez d'abord {earlier.strftime('%Y-%m')} : les mois se clôturent dans l'ordre")
    fy_start = fiscal_year_start(start, org.fiscal_year_start_month)
    if start == fy_start and await _has_entries_before(session, org_id, start):
        previous = fy_start.year - 1
        if await year_closing(session, org_id, previous) is None:
            raise LedgerError(f"clôturez d'abord l'exercice {previous} (funding ledger close-year {previous}) : "
                              f"ses à-nouveaux sont datés du {start.isoformat()}")
    if end.month % 12 + 1 == org.fiscal_year_start_month:  # the fiscal year's last month: its year-end entries first
        for hook in YEAR_END:
            await hook(session, org_id, fy_start, end, now)

    got = await _period_totals(session, org_id, start, end)
    previous_closing = await session.scalar(
        select(Closing).where(Closing.org_id == org_id, Closing.kind == ClosingKind.MONTH).order_by(Closing.end_date.desc()).limit(1)
    )
    grand = defaultdict(int, json.loads(previous_closing.grand_total) if previous_closing else {})
    fiscal = defaultdict(int, json.loads(previous_closing.fiscal_year_total)
                         if previous_closing and previous_closing.start_date >= fy_start else {})
    for cur, amount in got.period_total.items():
        grand[cur] += amount
        fiscal[cur] += amount

    closing = Closing(
        labels=await labels_snapshot(session, org),
        org_id=org_id,
        kind=ClosingKind.MONTH,
        period=period,
        start_date=start,
        end_date=end,
        first_number=got.first_number,
        last_number=got.last_number,
        entry_count=got.count,
        totals=_dumps(got.totals),
        period_total=_dumps(got.period_total),
        fiscal_year_total=_dumps(dict(fiscal)),
        grand_total=_dumps(dict(grand)),
        closed_at=now,
        closed_by=closed_by,
        prev_hash=head.last_closing_hash,
        hash="",
    )
    return await _store_closing(session, org, head, closing, SealKind.MONTH, now)


async def close_months(session: AsyncSession, org_id: int, periods: Iterable[str], *, closed_by: str = "",
                       now: dt.datetime | None = None) -> list[Closing]:
    """Close months in order, closing a fiscal year first where the next month opens a new one
    (what the demo does; people close a year by its own command, once its accounts are final)."""
    from funding.orgs.models import Organisation

    org = await session.get(Organisation, org_id)
    if org is None:
        raise LedgerError(f"organisation {org_id} inconnue")
    done = []
    for period in periods:
        start, _ = month_bounds(period)
        if (start == fiscal_year_start(start, org.fiscal_year_start_month) and await _has_entries_before(session, org_id, start)
                and await year_closing(session, org_id, start.year - 1) is None):
            done.append((await close_year(session, org_id, start.year - 1, closed_by=closed_by, now=now)).closing)
        done.append(await close_month(session, org_id, period, closed_by=closed_by, now=now))
    return done


# Classes carried into the next year (balance sheet) and those whose balance is the year's result.
BALANCE_CLASSES = ("1", "2", "3", "4", "5")
RESULT_CLASSES = ("6", "7")
RESULT_ACCOUNTS = {"surplus": "120", "deficit": "129"}
CARRIED_ACCOUNTS = {"surplus": "110", "deficit": "119"}  # an earlier result nobody allocated


@dataclass
class YearClosed:
    closing: Closing
    openings: list[Posted]
    result: dict[str, int]  # per currency: > 0 a surplus, < 0 a deficit


async def opening_drafts(session: AsyncSession, org_id: int, year: int, start: dt.date, end: dt.date,
                         start_month: int = 1) -> tuple[list[EntryDraft], dict[str, int]]:
    """The à-nouveaux of the year after ``year``: per site and currency, one entry in journal AN
    dated the next year's first day, carrying every balance of classes 1 to 5 (auxiliary
    accounts kept), the year's result into 120 (surplus) or 129 (deficit), and an earlier
    result still on 12x into report à nouveau (110/119). The year's balances are its own
    entries, à-nouveaux of the year before included (a year closes after the one before)."""
    cls = func.substr(Posting.account_number, 1, 1)
    rows = (await session.execute(
        select(Entry.site_id, Posting.account_number, Posting.aux_code, Posting.currency, func.sum(Posting.amount))
        .join(Entry, Entry.id == Posting.entry_id)
        .where(Entry.org_id == org_id, Entry.number.is_not(None), Entry.entry_date.between(start, end),
               cls.in_((*BALANCE_CLASSES, *RESULT_CLASSES)))
        .group_by(Entry.site_id, Posting.account_number, Posting.aux_code, Posting.currency)
        .order_by(Entry.site_id, Posting.currency, Posting.account_number, Posting.aux_code)
    )).all()
    lines: dict[tuple[int, str], list[Line]] = defaultdict(list)
    earlier: dict[tuple[int, str], int] = defaultdict(int)
    result: dict[tuple[int, str], int] = defaultdict(int)
    for site_id, account, aux, currency, total in rows:
        amount = int(total or 0)
        key = (site_id, currency)
        if account[0] in RESULT_CLASSES:
            result[key] += amount
        elif account.startswith("12"):
            earlier[key] += amount
        elif amount:
            lines[key].append(Line(account, amount, currency, aux, None))
    next_day = end + dt.timedelta(days=1)
    drafts: list[EntryDraft] = []
    totals: dict[str, int] = defaultdict(int)
    for key in sorted(set(lines) | set(earlier) | set(result)):
        site_id, currency = key
        out = list(lines.get(key, []))
        if earlier.get(key):
            out.append(Line(CARRIED_ACCOUNTS["surplus" if earlier[key] < 0 else "deficit"], earlier[key], currency, None,
                            f"Résultat antérieur reporté à nouveau ({year_label(year - 1, start_month)})"))
        if result.get(key):
            out.append(Line(RESULT_ACCOUNTS["surplus" if result[key] < 0 else "deficit"], result[key], currency, None,
                            f"Résultat de l'exercice {year_label(year, start_month)}"))
        totals[currency] -= result.get(key, 0)
        if len(out) < 2:
            if out:  # a lone balance would mean an unbalanced year: the entries say otherwise
                raise LedgerError(f"à-nouveaux déséquilibrés pour le site {site_id} ({currency})")
            continue
        drafts.append(EntryDraft(
            org_id=org_id, site_id=site_id, journal="AN", entry_date=next_day, piece_date=next_day,
            label=f"À-nouveaux de l'exercice {year_label(year, start_month)}", piece_ref=f"AN-{year}", funding_source=FundingSource.INTERNAL,
            lines=out, source_key=f"an:{org_id}:{next_day:%Y%m%d}:{site_id}:{currency}", created_by="clôture"))
    return drafts, dict(totals)


async def close_year(
    session: AsyncSession,
    org_id: int,
    year: int | str,
    *,
    closed_by: str = "",
    now: dt.datetime | None = None,
) -> YearClosed:
    """Close a fiscal year once its twelve months are closed (and the year before it): store
    the year's totals as a closing of kind ``year``, chained with the months', post the next
    year's à-nouveaux (journal AN) and seal. A closed year never reopens: its months and its
    closing are frozen by the database, and a second closing of it is refused."""
    from funding.orgs.models import Organisation

    now = now or utcnow()
    year = parse_year(year)
    org = await session.get(Organisation, org_id)
    if org is None:
        raise LedgerError(f"organisation {org_id} inconnue")
    start, end = fiscal_year_bounds(year, org.fiscal_year_start_month)
    head = await _lock_head(session, org_id)
    if await year_closing(session, org_id, year) is not None:
        raise LedgerError(f"l'exercice {year} est déjà clos : un exercice clos ne se rouvre pas")
    if head.closed_through is None or head.closed_through < end:
        upto = "aucun mois n'est clos" if head.closed_through is None else f"clos jusqu'au {head.closed_through.isoformat()}"
        raise LedgerError(f"clôturez d'abord les douze mois de l'exercice {year} ({start:%Y-%m} à {end:%Y-%m}) : {upto}")
    if head.closed_through > end:
        raise LedgerError(f"l'exercice {year} ne peut plus être clos : des mois de l'exercice suivant le sont déjà")
    if await _has_entries_before(session, org_id, start) and await year_closing(session, org_id, year - 1) is None:
        raise LedgerError(f"clôturez d'abord l'exercice {year - 1} : les exercices se clôturent dans l'ordre")

    got = await _period_totals(session, org_id, start, end)
    last_month = await session.scalar(
        select(Closing).where(Closing.org_id == org_id, Closing.kind == ClosingKind.MONTH).order_by(Closing.end_date.desc()).limit(1)
    )
    drafts, result = await opening_drafts(session, org_id, year, start, end, org.fiscal_year_start_month)
    closing = Closing(
        labels=await labels_snapshot(session, org),
        org_id=org_id,
        kind=ClosingKind.YEAR,
        period=str(year),
        start_date=start,
        end_date=end,
        first_number=got.first_number,
        last_number=got.last_number,
        entry_count=got.count,
        totals=_dumps(got.totals),
        period_total=_dumps(got.period_total),
        fiscal_year_total=_dumps(got.period_total),
        grand_total=last_month.grand_total if last_month is not None else _dumps({}),
        closed_at=now,
        closed_by=closed_by,
        prev_hash=head.last_closing_hash,
        hash="",
    )
    posted = (await post(session, drafts, now=now)).entries if drafts else []
    await _store_closing(session, org, head, closing, SealKind.YEAR, now)
    return YearClosed(closing, posted, result)


async def labels_snapshot(session: AsyncSession, org: Organisation) -> str:
    """The labels a period's exports print beside its codes, as they are now (frozen in its closing)."""
    from funding.ledger.models import Grant, Journal
    from funding.orgs.models import Site

    def table(rows: Sequence[AnyRow]) -> dict[str, str]:
        return {str(k): v for k, v in rows}

    doc = {
        "org": {"name": org.name, "siren": org.siren, "currency": org.currency},
        "accounts": table((await session.execute(select(Account.number, Account.label).where(Account.org_id == org.id))).all()),
        "aux": table((await session.execute(select(AuxAccount.code, AuxAccount.label).where(AuxAccount.org_id == org.id))).all()),
        "journals": table((await session.execute(select(Journal.code, Journal.label))).all()),
        "sites": {str(i): [slug, name] for i, slug, name in (await session.execute(
            select(Site.id, Site.slug, Site.name).where(Site.org_id == org.id))).all()},
        "grants": table((await session.execute(select(Grant.id, Grant.reference).where(Grant.org_id == org.id))).all()),
    }
    return json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _dumps(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


# --- reports ----------------------------------------------------------------------


def validated_entries(query: SelectT, *, org_id: int | None = None, site_id: int | None = None,
                      start: dt.date | None = None, end: dt.date | None = None) -> SelectT:
    """Restrict a query joined on entries to validated ones of an organisation, site and period."""
    query = query.where(Entry.number.is_not(None))
    if org_id is not None:
        query = query.where(Entry.org_id == org_id)
    if site_id is not None:
        query = query.where(Entry.site_id == site_id)
    if start is not None:
        query = query.where(Entry.entry_date >= start)
    if end is not None:
        query = query.where(Entry.entry_date <= end)
    return query


@dataclass(frozen=True)
class BalanceRow:
    account: str
    label: str
    currency: str
    debit: int
    credit: int
    opening: int = 0  # carried into the period (signed, debit > 0); 0 unless asked for

    @property
    def balance(self) -> int:
        return self.opening + self.debit - self.credit


async def trial_balance(
    session: AsyncSession,
    *,
    org_id: int | None = None,
    site_id: int | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    openings: bool = False,
) -> list[BalanceRow]:
    """Debit and credit totals per account. Without ``org_id`` the network is consolidated.
    With ``openings`` (an organisation and a start), each row also carries what the account
    brings into the period (:func:`opening_balances`), so its balance is the general ledger's."""
    amount = Posting.amount
    query = (
        select(
            Posting.account_number,
            Posting.currency,
            func.coalesce(func.sum(case((amount > 0, amount), else_=0)), 0).label("debit"),
            func.coalesce(func.sum(case((amount < 0, -amount), else_=0)), 0).label("credit"),
        )
        .join(Entry, Entry.id == Posting.entry_id)
        .group_by(Posting.account_number, Posting.currency)
        .order_by(Posting.account_number, Posting.currency)
    )
    query = validated_entries(query, org_id=org_id, site_id=site_id, start=start, end=end)
    rows = (await session.execute(query)).all()
    labels_q = select(Account.number, func.min(Account.label)).group_by(Account.number)
    if org_id is not None:
        labels_q = labels_q.where(Account.org_id == org_id)
    labels = dict((await session.execute(labels_q)).all())
    out = {(r.account_number, r.currency): BalanceRow(r.account_number, labels.get(r.account_number, ""), r.currency,
                                                      int(r.debit), int(r.credit)) for r in rows}
    if openings and org_id is not None and start is not None:
        carried = await opening_balances(await session.connection(), org_id=org_id, start=start, site_id=site_id)
        for key, carried_amount in carried.items():
            row = out.get(key) or BalanceRow(key[0], labels.get(key[0], ""), key[1], 0, 0)
            out[key] = replace(row, opening=carried_amount)
    return [out[k] for k in sorted(out)]


async def opening_balances(conn: AsyncConnection, *, org_id: int, start: dt.date,
                           site_id: int | None = None) -> dict[tuple[str, str], int]:
    """What every account carries into a period starting on ``start`` (signed, debit > 0), by
    the rule of fiscal years: the accounts of the balance sheet (classes 1 to 5) carry from the
    last closed year's à-nouveaux (journal AN, dated its next year's first day) or from the
    beginning; the accounts of the result (classes 6 and 7) and class 8 only from the fiscal
    year of ``start``. The result of an earlier year not yet closed shows on 120 (surplus) or
    129 (deficit), where its à-nouveaux will put it."""
    from funding.orgs.models import Organisation

    month = (await conn.execute(select(Organisation.fiscal_year_start_month).where(Organisation.id == org_id))).scalar()
    fy_start = fiscal_year_start(start, month or 1)
    closed_end = (await conn.execute(
        select(func.max(Closing.end_date)).where(Closing.org_id == org_id, Closing.kind == ClosingKind.YEAR,
                                                  Closing.end_date < start))).scalar()
    base = closed_end + dt.timedelta(days=1) if closed_end is not None else None
    _E, _P = Entry.__table__.c, Posting.__table__.c
    income = func.substr(_P.account_number, 1, 1).in_((*RESULT_CLASSES, "8"))
    # 0: a balance-sheet account; 1: result or class 8 of this year; 2: result of an earlier open year.
    bucket = case((~income, 0), (_E.entry_date >= fy_start, 1), else_=2)
    query = (
        select(bucket.label("bucket"), _P.account_number, _P.currency, func.sum(_P.amount))
        .select_from(Entry.__table__.join(Posting.__table__, _P.entry_id == _E.id))
        .where(_E.org_id == org_id, _E.number.is_not(None), _E.entry_date < start)
        .group_by(bucket, _P.account_number, _P.currency)
    )
    if base is not None:
        query = query.where(_E.entry_date >= base)
    if site_id is not None:
        query = query.where(_E.site_id == site_id)
    out: dict[tuple[str, str], int] = defaultdict(int)
    for kind, account, currency, total in await conn.execute(query):
        amount = int(total or 0)
        if kind == 2:
            if account[0] in RESULT_CLASSES:
                out[("__result__", currency)] += amount
        else:
            out[(account, currency)] += amount
    for key in [k for k in out if k[0] == "__result__"]:
        amount = out.pop(key)
        if amount:
            out[(RESULT_ACCOUNTS["surplus" if amount < 0 else "deficit"], key[1])] += amount
    return {k: v for k, v in out.items() if v}


def totals_by_currency(rows: Iterable[BalanceRow]) -> dict[str, tuple[int, int]]:
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        out[row.currency][0] += row.debit
        out[row.currency][1] += row.credit
    return {cur: (d, c) for cur, (d, c) in out.items()}


@dataclass(frozen=True)
class SourceRow:
    source: str
    currency: str
    amount: int


async def revenue_by_source(
    session: AsyncSession,
    *,
    org_id: int | None = None,
    site_id: int | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> list[SourceRow]:
    """Revenue (class 7 credits net of debits) per funding source, largest first."""
    query = (
        select(Entry.funding_source, Posting.currency, func.sum(-Posting.amount).label("amount"))
        .join(Entry, Entry.id == Posting.entry_id)
        .where(Posting.account_number.like("7%"))
        .group_by(Entry.funding_source, Posting.currency)
    )
    query = validated_entries(query, org_id=org_id, site_id=site_id, start=start, end=end)
    rows = [SourceRow(r.funding_source, r.currency, int(r.amount)) for r in (await session.execute(query)).all()]
    return sorted((r for r in rows if r.amount), key=lambda r: (-r.amount, r.source))
