"""Plain-text accounting exports: Beancount (checked by ``bean-check``) and an hledger
journal (checked by ``hledger check -s``). Transactions in date order, one per entry;
accounts keep their PCG number, auxiliary accounts are sub-accounts."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from funding.db import AnyRow
from funding.exports.journal import Progress, Scope, currencies, in_scope, lookups, rows_query, stream_rows, stripe_id
from funding.ledger.models import Entry, Posting
from funding.money import exponent, format_plain

_E = Entry.__table__.c
_P = Posting.__table__.c
_ASSET_PREFIXES = ("409", "41", "425", "441", "4456", "486")
_SPACES = re.compile(r"[\s\x00-\x1f\x7f-\x9f]+")


def root(number: str) -> str:
    """The Beancount / hledger root of a PCG account (class 1 equity … class 7 income)."""
    first = number[0]
    if first == "1":
        return "Equity"
    if first in "235" or number.startswith(_ASSET_PREFIXES):
        return "Assets"
    if first == "4":
        return "Liabilities"
    if first == "6" or number.startswith("86"):
        return "Expenses"
    if first == "7" or number.startswith("87"):
        return "Income"
    return "Equity"


def aux_component(code: str) -> str:
    """An auxiliary code as an account component both tools accept (capital or digit first)."""
    cleaned = re.sub(r"[^A-Z0-9-]", "-", code.upper()).strip("-") or "X"
    return cleaned if cleaned[0].isalnum() else "X" + cleaned


def decimal(amount: int, currency: str) -> str:
    return format_plain(amount, currency).replace(",", ".")


async def _accounts_used(conn: AsyncConnection, scope: Scope) -> list[tuple[str, str | None]]:
    query = in_scope(select(_P.account_number, _P.aux_code).distinct().select_from(
        Entry.__table__.join(Posting.__table__, _P.entry_id == _E.id)), scope)
    return sorted((await conn.execute(query)).all(), key=lambda r: (r[0], r[1] or ""))


def _header(scope: Scope, comment: str) -> list[str]:
    site = f", lieu {scope.site_slug}" if scope.site_slug else ""
    return [
        (f"{comment} {scope.org_name} (SIREN {scope.siren}) : écritures validées du {scope.start.isoformat()} "
         f"au {scope.end.isoformat()}{site}"),
        f"{comment} Exporté par Entre-Lab Funding. Montants en unités monétaires ; une transaction par écriture.",
        "",
    ]


async def _transactions(conn: AsyncConnection, scope: Scope, progress: Progress | None, render) -> AsyncIterator[bytes]:
    """``render(rows)`` of each entry, its postings grouped (rows come by date, number, line)."""
    number = None
    rows: list[AnyRow] = []
    async for part in stream_rows(conn, rows_query(scope, "date")):
        out: list[str] = []
        for r in part:
            if r.number != number:
                if rows:
                    out += render(rows)
                number, rows = r.number, []
            rows.append(r)
        if progress:
            progress(len(part))
        if out:
            yield ("\n".join(out) + "\n").encode()
    if rows:
        yield ("\n".join(render(rows)) + "\n").encode()


# --- Beancount --------------------------------------------------------------------------


def _bean_string(text: str) -> str:
    return '"' + _SPACES.sub(" ", text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def bean_account(number: str, aux: str | None) -> str:
    return f"{root(number)}:{number}" + (f":{aux_component(aux)}" if aux else "")


async def beancount(conn: AsyncConnection, scope: Scope, progress: Progress | None = None) -> AsyncIterator[bytes]:
    look = await lookups(conn, scope)
    out = _header(scope, ";;")
    out.append(f"option \"title\" {_bean_string(f'{scope.org_name} — {scope.start.isoformat()} / {scope.end.isoformat()}')}")
    out.append(f'option "operating_currency" "{scope.currency}"')
    out.append("")
    for cur in await currencies(conn, scope):
        out.append(f"{scope.start.isoformat()} commodity {cur}")
    opened = set()
    for number, aux in await _accounts_used(conn, scope):
        for account, label in ((bean_account(number, None), look.accounts.get(number, "")),
                               (bean_account(number, aux), look.aux.get(aux, "") if aux else "")):
            if account not in opened:
                opened.add(account)
                out.append(f"{scope.start.isoformat()} open {account}")
                if label:
                    out.append(f"  name: {_bean_string(label)}")
    out.append("")
    yield ("\n".join(out) + "\n").encode()

    def transaction(rows) -> list[str]:
        first = rows[0]
        lines = [f"{first.entry_date.isoformat()} * {_bean_string(first.label)}",
                 f"  number: {first.number}", f"  journal: {_bean_string(first.journal_code)}",
                 f"  piece: {_bean_string(first.piece_ref)}", f"  funding: {_bean_string(first.funding_source)}"]
        slug = look.sites.get(first.site_id, ("",))[0]
        if slug:
            lines.append(f"  site: {_bean_string(slug)}")
        if stripe_id(first.source_key):
            lines.append(f"  stripe: {_bean_string(stripe_id(first.source_key))}")
        if first.grant_id and first.grant_id in look.grants:
            lines.append(f"  grant: {_bean_string(look.grants[first.grant_id])}")
        if first.reverses:
            lines.append(f"  reverses: {first.reverses}")
        for r in rows:
            lines.append(f"  {bean_account(r.account_number, r.aux_code)}  {decimal(r.amount, r.currency)} {r.currency}")
            if r.line_label:
                lines.append(f"    label: {_bean_string(r.line_label)}")
        lines.append("")
        return lines

    async for chunk in _transactions(conn, scope, progress, transaction):
        yield chunk


# --- hledger ----------------------------------------------------------------------------


def _h_text(text: str) -> str:
    """Descriptions and comments: one line, no ``;`` (it would start a comment)."""
    return _SPACES.sub(" ", text).replace(";", ",").strip()


def _h_tag(text: str) -> str:
    return _h_text(text).replace(",", " ")


def h_account(number: str, aux: str | None) -> str:
    return number + (f":{aux_component(aux)}" if aux else "")


_H_TYPES = {"Assets": "A", "Liabilities": "L", "Equity": "E", "Income": "R", "Expenses": "X"}


async def hledger(conn: AsyncConnection, scope: Scope, progress: Progress | None = None) -> AsyncIterator[bytes]:
    look = await lookups(conn, scope)
    out = _header(scope, ";")
    for cur in await currencies(conn, scope):
        exp = exponent(cur)
        out.append(f"commodity 1000{'.' + '0' * exp if exp else ''} {cur}")
    out.append("")
    declared = set()
    for number, aux in await _accounts_used(conn, scope):
        for account, label in ((h_account(number, None), look.accounts.get(number, "")),
                               (h_account(number, aux), look.aux.get(aux, "") if aux else "")):
            if account not in declared:
                declared.add(account)
                out.append(f"account {account}  ; type:{_H_TYPES[root(number)]}")
                if label:
                    out.append(f"  ; {_h_text(label)}")
    out.append("")
    yield ("\n".join(out) + "\n").encode()

    def transaction(rows) -> list[str]:
        first = rows[0]
        tags = [f"journal:{first.journal_code}", f"piece:{_h_tag(first.piece_ref)}", f"funding:{first.funding_source}"]
        slug = look.sites.get(first.site_id, ("",))[0]
        if slug:
            tags.append(f"site:{slug}")
        if stripe_id(first.source_key):
            tags.append(f"stripe:{_h_tag(stripe_id(first.source_key))}")
        if first.grant_id and first.grant_id in look.grants:
            tags.append(f"grant:{_h_tag(look.grants[first.grant_id])}")
        if first.reverses:
            tags.append(f"reverses:{first.reverses}")
        lines = [f"{first.entry_date.isoformat()} * ({first.number}) {_h_text(first.label)}  ; {', '.join(tags)}"]
        for r in rows:
            comment = f"  ; {_h_text(r.line_label)}" if r.line_label and _h_text(r.line_label) else ""
            lines.append(f"    {h_account(r.account_number, r.aux_code)}  {decimal(r.amount, r.currency)} {r.currency}{comment}")
        lines.append("")
        return lines

    async for chunk in _transactions(conn, scope, progress, transaction):
        yield chunk
