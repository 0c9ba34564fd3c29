"""Trial balance (balance générale) and general ledger (grand livre) per account, as CSV
and as rows for the printable pages."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from funding import csvout
from funding.exports.journal import Progress, Scope, in_scope, lookups, stream_rows
from funding.ledger.models import Entry, Posting
from funding.ledger.service import BalanceRow, opening_balances, trial_balance
from funding.money import format_plain

_E = Entry.__table__.c
_P = Posting.__table__.c
TRIAL_BALANCE_COLUMNS = ("compte", "intitule", "devise", "debit", "credit", "solde_debiteur", "solde_crediteur",
                         "report_debiteur", "report_crediteur")
GENERAL_LEDGER_COLUMNS = ("compte", "intitule", "ligne", "date", "numero", "journal", "piece", "libelle", "debit", "credit",
                          "solde", "devise")


def _csv_writer():
    buf = io.StringIO()
    return buf, csvout.writer(buf, delimiter=";", lineterminator="\r\n")


def _flush(buf: io.StringIO) -> bytes:
    data = buf.getvalue().encode()
    buf.seek(0)
    buf.truncate()
    return data


async def balance_rows(session: AsyncSession, scope: Scope) -> list[BalanceRow]:
    rows = await trial_balance(session, org_id=scope.org_id, site_id=scope.site_id, start=scope.start, end=scope.end,
                               openings=True)
    if scope.labels is None:
        return rows
    frozen = json.loads(scope.labels)["accounts"]
    return [replace(r, label=frozen.get(r.account, r.label)) for r in rows]


def trial_balance_csv(rows: list[BalanceRow]) -> bytes:
    buf, writer = _csv_writer()
    writer.writerow(TRIAL_BALANCE_COLUMNS)
    for r in rows:
        writer.writerow((r.account, r.label, r.currency, format_plain(r.debit, r.currency), format_plain(r.credit, r.currency),
                         format_plain(max(r.balance, 0), r.currency), format_plain(max(-r.balance, 0), r.currency),
                         format_plain(max(r.opening, 0), r.currency), format_plain(max(-r.opening, 0), r.currency)))
    return ("\ufeff" + buf.getvalue()).encode()


@dataclass(frozen=True)
class LedgerLine:
    """A line of the general ledger: ``kind`` is ``opening``, ``move`` or ``total``."""

    kind: str
    account: str
    label: str
    currency: str
    debit: int
    credit: int
    balance: int
    day: dt.date | None = None
    number: int | None = None
    journal: str = ""
    piece: str = ""
    text: str = ""


@dataclass
class _Running:
    """The account being written (account, currency) and its running sums."""

    key: tuple[str, str] | None = None
    balance: int = 0
    debit: int = 0
    credit: int = 0


async def _openings(conn: AsyncConnection, scope: Scope) -> dict[tuple[str, str], int]:
    """What every account carries into the period, by the rule of fiscal years (the ledger's)."""
    return await opening_balances(conn, org_id=scope.org_id, start=scope.start, site_id=scope.site_id)


async def general_ledger(conn: AsyncConnection, scope: Scope, progress: Progress | None = None) -> AsyncIterator[list[LedgerLine]]:
    """Per account (then currency): the balance brought forward, every posting of the period
    with the running balance, and the account's totals. Yields batches of lines."""
    look = await lookups(conn, scope)
    openings = await _openings(conn, scope)
    query = (
        select(_P.account_number, _P.currency, _E.entry_date, _E.number, _E.journal_code, _E.piece_ref, _E.label,
               _P.label.label("line_label"), _P.amount)
        .select_from(Entry.__table__.join(Posting.__table__, _P.entry_id == _E.id))
        .order_by(_P.account_number, _P.currency, _E.entry_date, _E.number, _P.line_no)
    )
    query = in_scope(query, scope)

    state = _Running()
    pending = sorted(openings)  # accounts carried forward, merged in account order

    def close() -> list[LedgerLine]:
        if state.key is None:
            return []
        account, cur = state.key
        return [LedgerLine("total", account, look.accounts.get(account, ""), cur, state.debit, state.credit, state.balance)]

    def open_account(key: tuple[str, str]) -> list[LedgerLine]:
        state.key, state.balance, state.debit, state.credit = key, openings.get(key, 0), 0, 0
        bal = state.balance
        if not bal:
            return []
        return [LedgerLine("opening", key[0], look.accounts.get(key[0], ""), key[1], max(bal, 0), max(-bal, 0), bal,
                           day=scope.start)]

    def advance_to(key: tuple[str, str]) -> list[LedgerLine]:
        out = close()
        while pending and pending[0] < key:  # accounts with a balance but no movement this period
            out += open_account(pending.pop(0)) + close()
        if pending and pending[0] == key:
            pending.pop(0)
        return out + open_account(key)

    async for part in stream_rows(conn, query):
        out: list[LedgerLine] = []
        for r in part:
            key = (r.account_number, r.currency)
            if key != state.key:
                out += advance_to(key)
            amount = r.amount
            state.balance += amount
            if amount > 0:
                state.debit += amount
            else:
                state.credit -= amount
            out.append(LedgerLine("move", r.account_number, look.accounts.get(r.account_number, ""), r.currency,
                                  max(amount, 0), max(-amount, 0), state.balance, day=r.entry_date, number=r.number,
                                  journal=r.journal_code, piece=r.piece_ref, text=r.line_label or r.label))
        if progress:
            progress(len(part))
        yield out
    out = close()
    state.key = None
    while pending:
        out += open_account(pending.pop(0)) + close()
        state.key = None
    yield out


async def general_ledger_csv(conn: AsyncConnection, scope: Scope, progress: Progress | None = None) -> AsyncIterator[bytes]:
    buf, writer = _csv_writer()
    writer.writerow(GENERAL_LEDGER_COLUMNS)
    yield ("\ufeff").encode() + _flush(buf)
    kinds = {"opening": "report", "move": "mouvement", "total": "total"}
    async for lines in general_ledger(conn, scope, progress):
        for ln in lines:
            cur = ln.currency
            writer.writerow((ln.account, ln.label, kinds[ln.kind], ln.day.isoformat() if ln.day else "", ln.number or "",
                             ln.journal, ln.piece, ln.text, format_plain(ln.debit, cur), format_plain(ln.credit, cur),
                             format_plain(ln.balance, cur), cur))
        yield _flush(buf)

