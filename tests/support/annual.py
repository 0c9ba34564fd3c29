"""A small set of books whose annual accounts were computed by hand (tests/ledger/test_annual.py
and the pages' tests): 2023 before N-1, 2024 as N-1, 2025 as N, an à-nouveau entry and an entry
after the year that must not count."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from funding.db import transaction
from funding.ledger.models import Account
from funding.ledger.records import Record, record_many
from funding.ledger.service import EntryDraft, credit, debit, post
from tests.support.world import World

EXTRA_ACCOUNTS = (("110", "Report à nouveau (solde créditeur)"), ("2183", "Matériel informatique"),
                  ("28183", "Amortissements du matériel informatique"), ("401", "Fournisseurs"), ("606", "Achats non stockés"),
                  ("6811", "Dotations aux amortissements"))


def _entry(world: World, day: str, lines, *, journal: str = "OD", site_id: int | None = None, label: str = "Écriture") -> EntryDraft:
    return EntryDraft(org_id=world.org_id, site_id=site_id or world.site_id, journal=journal,
                      entry_date=dt.date.fromisoformat(day), label=label, piece_ref=f"P-{day}", funding_source="self",
                      lines=list(lines))


def hand_books(world: World) -> list[EntryDraft]:
    return [
        _entry(world, "2023-03-01", [debit("512", 100000), credit("7561", 100000)], journal="BQ"),
        _entry(world, "2023-06-01", [debit("606", 30000), credit("512", 30000)], journal="BQ"),
        _entry(world, "2024-02-01", [debit("441", 500000), credit("741", 500000)]),
        _entry(world, "2024-04-10", [debit("512", 300000), credit("441", 300000)], journal="BQ"),
        _entry(world, "2024-05-01", [debit("2183", 120000), credit("401", 120000)]),
        _entry(world, "2024-12-31", [debit("6811", 40000), credit("28183", 40000)]),
        _entry(world, "2024-12-31", [debit("6894", 100000), credit("194", 100000)]),
        _entry(world, "2025-01-15", [debit("512", 120000), credit("706", 100000), credit("445711", 20000)], journal="BQ",
               site_id=world.other_site_id),
        _entry(world, "2025-02-01", [debit("401", 120000), credit("512", 120000)], journal="BQ"),
        _entry(world, "2025-03-01", [debit("194", 60000), credit("7894", 60000)]),
        _entry(world, "2025-06-30", [debit("6811", 40000), credit("28183", 40000)]),
        _entry(world, "2025-07-01", [debit("512", 50000), credit("75411", 50000)], journal="BQ", site_id=world.other_site_id),
        _entry(world, "2025-09-01", [debit("627", 1500), credit("512", 1500)], journal="BQ"),
        _entry(world, "2026-01-05", [debit("512", 777700), credit("706", 777700)], journal="BQ"),
    ]


def an_entry(world: World) -> EntryDraft:
    """What a year's closing posts on the first day of the next year: never counted."""
    return _entry(world, "2025-01-01", [debit("512", 999900), credit("110", 999900)], journal="AN", label="À-nouveaux")


async def seed_hand_books(sessions, world: World, *, with_an: bool = True) -> None:
    async with transaction(sessions) as session:
        have = set((await session.scalars(select(Account.number).where(Account.org_id == world.org_id))).all())
        session.add_all(Account(org_id=world.org_id, number=n, label=label) for n, label in EXTRA_ACCOUNTS if n not in have)
        await session.flush()
        await post(session, hand_books(world) + ([an_entry(world)] if with_an else []))
        await record_many(session, [Record("volunteering", "2025-10-01", "", site=world.site_slug, hours="100",
                                           hourly_value="11,88", label="Animation des ateliers", piece_ref="HEURES-2025-10")],
                          created_by="test")


def check_bilan_against_trial_balance(acc, rows) -> None:
    """The bilan of ``acc`` (AnnualAccounts) is the trial balance ``rows`` of its year (with
    openings, so each row's balance is its closing one): each of its lines the sum of the accounts
    of classes 1 to 5 it gathers, to the cent; the reserves and results (11x, 12x) brought in plus
    the year's result are its *report à nouveau* and *résultat*; the year's result is classes 6 and 7."""
    from collections import defaultdict

    from funding.ledger.annual import balance_line

    rows = [r for r in rows if r.currency == acc.currency]
    assert acc.result[0] == -sum(r.balance for r in rows if r.account[0] in "67")
    actif = {r.key: r.n for r in acc.actif}
    passif = {r.key: r.n for r in acc.passif}
    expected: dict[str, int] = defaultdict(int)
    for r in rows:
        line = balance_line(r.account, r.balance) if r.balance else None
        if line and not r.account.startswith(("11", "12")):
            expected[line] += r.balance if line in actif else -r.balance
    shown = {k: n for k, n in {**actif, **passif}.items()
             if n and not k.startswith(("groupe_", "total_")) and k not in ("report_a_nouveau", "resultat")}
    assert shown == {k: v for k, v in expected.items() if v}
    brought = -sum(r.balance for r in rows if r.account.startswith(("11", "12")))
    assert passif.get("report_a_nouveau", 0) + passif.get("resultat", 0) == brought + acc.result[0]
    assert acc.total_actif[0] == acc.total_passif[0]
