"""Chaotic webhook delivery (late, twice, concurrent, in any order) books exactly what polite
delivery books: the same scenario played twice through the sandbox, on the same empty
database, gives the same ledger lines (entry numbers, ids and times aside)."""

from __future__ import annotations

import re
import shutil
from types import SimpleNamespace

import httpx
from sqlalchemy import select

from funding.ledger.models import Entry, Posting
from funding.payments.models import StripeEvent
from funding.settings import load_settings
from tests.support.db import TEST_SEAL_KEY
from tests.support.e2e import (
    DAY,
    FAILS,
    HOUR,
    advance,
    change_card,
    db_call,
    donate,
    e2e_sandbox,
    join,
    pay_on_hosted_page,
    sandbox_get,
    served,
    setup,
    wait_for,
)
from tests.support.live import LiveServer, free_port

STRIPE_ID = re.compile(r"\b(?:cs_test|ch|in|po|pi|txn|re|dp|cus|sub|py|evt|inpay|cn)_[A-Za-z0-9]+")


def _settings(database_url: str):
    port = free_port()
    return load_settings({}, FUNDING_ENV="test", LEDGER_SEAL_KEY=TEST_SEAL_KEY, DATABASE_URL=database_url,
                         SECRET_KEY="e2e-secret-key-0123456789", BASE_URL=f"http://127.0.0.1:{port}", WORKER_POLL_SECONDS="0.2")


def _ledger(settings) -> list[tuple]:
    """Every entry's journal, label, piece and lines, Stripe's ids replaced, in a stable order."""
    async def go(sessions):
        async with sessions() as session:
            entries = (await session.scalars(select(Entry).order_by(Entry.number))).all()
            postings = (await session.scalars(select(Posting).order_by(Posting.entry_id, Posting.line_no))).all()
        lines: dict[int, list[tuple]] = {}
        for p in postings:
            lines.setdefault(p.entry_id, []).append((p.account_number, p.aux_code, p.amount, p.currency))
        return sorted((e.journal_code, STRIPE_ID.sub("<id>", e.label), STRIPE_ID.sub("<id>", e.piece_ref),
                       e.reverses_id is not None, tuple(lines[e.id])) for e in entries)

    return db_call(settings, go)


def _quiet(server) -> bool:
    """Every event delivered (the chaotic twins too) and processed."""
    rows = sandbox_get(server, "/_admin/events")["data"]
    delivered = all((e.get("sandbox_delivery") or {}).get("delivered_at") for e in rows)
    due_twice = any((e.get("sandbox_delivery") or {}).get("duplicate_at") for e in rows)

    async def statuses(sessions):
        async with sessions() as session:
            return set((await session.scalars(select(StripeEvent.status))).all())

    return delivered and not due_twice and db_call(server.settings, statuses) == {"processed"}


def _play(database_url: str, delivery: str) -> tuple[list[tuple], list[dict]]:
    settings = _settings(database_url)
    sandbox = e2e_sandbox(settings, delivery=delivery, seed=16)
    with LiveServer(served(settings, sandbox), int(settings.base_url.rsplit(":", 1)[1])) as live:
        server = SimpleNamespace(url=live.url, settings=settings)
        world = setup(server)
        anne = join(server, world, "flex", "Anne Vidal", "anne@example.org")
        bruno = join(server, world, "fixe", "Bruno Faure", "bruno@example.org")
        with httpx.Client(base_url=server.url, follow_redirects=False, timeout=30) as client:
            paid = pay_on_hosted_page(client, donate(client, world, amount="40"), "4242424242424242", email=None)
            assert paid.status_code in (302, 303)
        change_card(server, bruno, FAILS)
        advance(server, 31 * DAY + 2 * HOUR)  # Anne renews, Bruno's renewal fails; payouts reach the bank
        advance(server, 3 * DAY)
        wait_for(lambda: _quiet(server), timeout=60, what="every event delivered and processed")
        assert anne != bruno
        events = sandbox_get(server, "/_admin/events")["data"]
        return _ledger(settings), events


def _empty(database_url: str, sqlite_template) -> None:
    """The database as the fixture gave it: a fresh copy of the migrated SQLite file, or PostgreSQL emptied."""
    if database_url.startswith("sqlite"):
        shutil.copy(sqlite_template, database_url.split("///", 1)[1])
    else:
        from tests.support.db import empty_pg

        empty_pg(database_url)


def test_the_ledger_after_chaotic_delivery_equals_the_ledger_after_polite_delivery(database_url, sqlite_template):
    polite, polite_events = _play(database_url, "polite")
    assert not any((e.get("sandbox_delivery") or {}).get("duplicates") for e in polite_events)
    _empty(database_url, sqlite_template)
    chaos, chaos_events = _play(database_url, "chaos")
    assert sum((e.get("sandbox_delivery") or {}).get("duplicates") or 0 for e in chaos_events) > 0  # it was chaotic
    assert len(polite) >= 8 and {line[0] for line in polite} >= {"VT", "ST"}, polite
    assert chaos == polite
