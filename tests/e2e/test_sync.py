"""Webhooks that never arrived are recovered by `funding stripe sync`; payouts reconcile."""

from __future__ import annotations

import datetime as dt
import re

import httpx
import pytest
from sqlalchemy import select

from funding.ledger.models import Entry
from funding.payments.models import Payment
from funding.stripe_gateway import SANDBOX_PATH
from tests.support.cli import invoke
from tests.support.e2e import db_call, donate, e2e_sandbox, pay_on_hosted_page, sandbox_get, served, wait_for
from tests.support.live import LiveServer
from tests.support.world import make_world


@pytest.fixture
def deaf(e2e_settings):
    """The app, with a sandbox that signs with a secret the app does not know: every delivery fails."""
    s = e2e_settings
    sandbox = e2e_sandbox(s, webhook_secret="whsec_not_the_apps")
    with LiveServer(served(s, sandbox), int(s.base_url.rsplit(":", 1)[1])) as server:
        server.settings, server.sandbox = s, sandbox
        yield server


def cli(server, *args):
    return invoke(*args, database_url=server.settings.database_url, BASE_URL=server.settings.base_url,
                  STRIPE_SECRET_KEY=None)


async def _stripe_entries(sessions):
    async with sessions() as session:
        return (await session.scalars(select(Entry.label).where(Entry.source_key.like("stripe:%")).order_by(Entry.number))).all()


def test_sync_recovers_undelivered_events_and_reconcile_checks_payouts(deaf):
    world = db_call(deaf.settings, make_world)
    with httpx.Client(base_url=deaf.url, follow_redirects=False, timeout=20) as client:
        checkout_url = donate(client, world, amount="20", name="Ana")
        paid = pay_on_hosted_page(client, checkout_url, "4242424242424242", email=None)
        assert paid.status_code in (302, 303)

    def failed_deliveries():
        rows = sandbox_get(deaf, "/_admin/events")["data"]
        return rows and all((e.get("sandbox_delivery") or {}).get("attempts") for e in rows)

    wait_for(failed_deliveries, what="failed deliveries")
    assert db_call(deaf.settings, _stripe_entries) == []  # nothing got through

    today = dt.date.today().isoformat()
    result = cli(deaf, "stripe", "sync", "--since", today)
    assert result.exit_code == 0, result.stderr
    assert re.search(r"events not delivered: [1-9]\d* \([1-9]\d* new\)", result.stdout), result.stdout
    assert db_call(deaf.settings, _stripe_entries) == ["Don en ligne n° 1 — Thiers"]

    async def payment_status(sessions):
        async with sessions() as session:
            return await session.scalar(select(Payment.status))

    assert db_call(deaf.settings, payment_status) == "paid"
    again = cli(deaf, "stripe", "sync", "--since", today)  # idempotent
    assert "0 booked now" in again.stdout and db_call(deaf.settings, _stripe_entries) == ["Don en ligne n° 1 — Thiers"]

    httpx.post(f"{deaf.url}{SANDBOX_PATH}/_admin/advance", data={"seconds": str(5 * 86400)}, timeout=20)
    before = cli(deaf, "reconcile")
    assert before.exit_code == 1 and "UNRECONCILED" in before.stdout and "no ledger entry for txn_" in before.stdout
    assert cli(deaf, "stripe", "sync", "--since", today).exit_code == 0
    after = cli(deaf, "reconcile")
    assert after.exit_code == 0 and re.search(r"po_\w+: reconciled — 19,45 EUR", after.stdout), after.stdout
    assert db_call(deaf.settings, _stripe_entries)[-1] == "Virement Stripe vers la banque"


def test_replay_of_an_unknown_event_id_is_a_clear_error(deaf):
    result = cli(deaf, "webhooks", "replay", "not-an-event")
    assert result.exit_code == 1 and "not an event id" in result.stderr
    result = cli(deaf, "webhooks", "replay", "evt_does_not_exist")
    assert result.exit_code == 1 and "Stripe:" in result.stderr and "Traceback" not in result.stderr
