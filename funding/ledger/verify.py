"""Recompute the chain, the numbering and the balances of a ledger, streaming.

This is what catches a row altered behind the application's back (triggers disabled,
a restored backup, a hand-edited file): the stored hashes no longer follow from the
stored data.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from funding.db import AnyRow, AnySelect
from funding.ledger.canonical import chain_hash, closing_hash, entry_document
from funding.ledger.models import GENESIS_HASH, Closing, Entry, LedgerHead, Posting

if TYPE_CHECKING:
    from funding.ledger.seals import KeptSeal, Keyring

MAX_PROBLEMS = 100


@dataclass
class VerifyReport:
    org_id: int
    entries: int = 0
    postings: int = 0
    closings: int = 0
    problems: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # records other domains chained and verified
    notes: set[str] = field(default_factory=set)  # what was not checked, said beside an OK

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)


_E = Entry.__table__.c
_P = Posting.__table__.c


def _entries_query(org_id: int) -> AnySelect:
    return (
        select(
            _E.id, _E.number, _E.journal_code, _E.entry_date, _E.label, _E.piece_ref, _E.piece_date, _E.site_id,
            _E.funding_source, _E.reverses_id, _E.source_key, _E.grant_id, _E.validated_at, _E.prev_hash, _E.hash,
            _P.line_no, _P.account_number, _P.aux_code, _P.amount, _P.currency, _P.label,
        )
        .select_from(Entry.__table__.outerjoin(Posting.__table__, _P.entry_id == _E.id))
        .where(_E.org_id == org_id, _E.number.is_not(None))
        .order_by(_E.number, _P.line_no)
    )


async def verify_org(conn: AsyncConnection, org_id: int, *, batch: int = 10_000, keyring: Keyring | None = None,
                     kept: list[KeptSeal] | None = None) -> VerifyReport:
    """Numbering, chain and balance of every entry, the closings, the domains' own chains, then
    the seals (funding.ledger.seals): the organisation's, and ``kept`` ones (copies made
    elsewhere), checked against ``keyring``'s trusted keys."""
    report = VerifyReport(org_id)
    prev_hash, expected_number = GENESIS_HASH, 1
    current = None
    postings: list[tuple[Any, ...]] = []

    def finish() -> None:
        nonlocal prev_hash, expected_number
        if current is None:
            return
        number = current[1]
        report.entries += 1
        if number != expected_number:
            report.problem(f"entry {number}: numbering gap, expected {expected_number}")
        if current[13] != prev_hash:
            report.problem(f"entry {number}: prev_hash does not match the hash of entry {number - 1}")
        if not postings:
            report.problem(f"entry {number}: has no postings")
        else:
            totals: dict[str, int] = defaultdict(int)
            for p in postings:
                totals[p[4]] += p[3]
            if len(postings) < 2 or any(totals.values()):
                report.problem(f"entry {number}: unbalanced ({dict(totals)})")
        doc = entry_document(
            org_id=org_id, number=number, journal=current[2], entry_date=current[3], label=current[4],
            piece_ref=current[5], piece_date=current[6], site_id=current[7], funding_source=current[8],
            reverses_id=current[9], source_key=current[10], grant_id=current[11], validated_at=current[12],
            postings=postings,
        )
        if chain_hash(current[13], doc) != current[14]:
            report.problem(f"entry {number}: hash mismatch, its content was altered after validation")
        prev_hash, expected_number = current[14], number + 1

    result = await conn.stream(_entries_query(org_id))
    async for rows in result.partitions(batch):
        for row in rows:
            if current is None or row[0] != current[0]:
                finish()
                current, postings = row, []
            if row[15] is not None:
                postings.append((row[15], row[16], row[17], row[18], row[19], row[20]))
                report.postings += 1
    finish()

    head = (await conn.execute(select(LedgerHead.__table__).where(LedgerHead.org_id == org_id))).one_or_none()
    if head is None:
        report.problem("ledger head missing")
    else:
        if head.last_number != expected_number - 1:
            report.problem(f"ledger head says {head.last_number} entries, the chain has {expected_number - 1}")
        elif head.last_hash != prev_hash:
            report.problem(f"entry {head.last_number}: ledger head hash differs from the last entry's hash")
    await _verify_closings(conn, org_id, report, head)
    from funding.domains import parts

    for module in parts("integrity"):  # domains' own chained records (the bar's sale lines and closings)
        await module.verify(conn, org_id, report)
    from funding.ledger.seals import verify as verify_seals

    await verify_seals(conn, org_id, report, keyring, kept)
    return report


async def _verify_closings(conn: AsyncConnection, org_id: int, report: VerifyReport, head: AnyRow | None) -> None:
    closings = (
        await conn.execute(
            select(Closing.__table__).where(Closing.org_id == org_id).order_by(Closing.end_date, Closing.id)
        )
    ).all()
    prev = GENESIS_HASH
    for closing in closings:
        report.closings += 1
        if closing.prev_hash != prev:
            report.problem(f"closing {closing.period}: not chained to the previous closing")
        if closing_hash(closing) != closing.hash:
            report.problem(f"closing {closing.period}: hash mismatch, the closing was altered")
        amount = _P.amount
        rows = (
            await conn.execute(
                select(
                    _P.account_number, _P.currency,
                    func.sum(case((amount > 0, amount), else_=0)), func.sum(case((amount < 0, -amount), else_=0)),
                )
                .select_from(Posting.__table__.join(Entry.__table__, _E.id == _P.entry_id))
                .where(_E.org_id == org_id, _E.number.is_not(None), _E.entry_date.between(closing.start_date, closing.end_date))
                .group_by(_P.account_number, _P.currency)
            )
        ).all()
        recomputed = {f"{r[0]}|{r[1]}": [int(r[2] or 0), int(r[3] or 0)] for r in rows}
        if recomputed != json.loads(closing.totals):
            report.problem(f"closing {closing.period}: totals differ from the entries of the period")
        prev = closing.hash
    if head is not None and head.last_closing_hash != prev:
        report.problem("ledger head's closing hash differs from the last closing")
