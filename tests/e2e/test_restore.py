"""A restored backup never charges twice (issue 19).

The database is copied before an all-or-nothing campaign's deadline; the deadline charges its 5
backers through the sandbox; the copy is restored; the sandbox's clock moves 25 h on, past Stripe's
idempotency window (its saved keys expire); then ``funding stripe sync`` and every job run. Stripe
still holds 5 succeeded PaymentIntents, not 10, and the pledges are paid again, by the same ones.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
from pathlib import Path

from sqlalchemy import func, select

from funding.campaigns import deadline
from funding.campaigns.demo import _promise
from funding.campaigns.models import Campaign, Pledge
from funding.db import utcnow
from funding.ledger.models import Entry
from funding.payments.calls import resolve_unknown
from funding.stripe_gateway import SANDBOX_PATH, StripeGateway
from stripe_sandbox import Sandbox
from tests.support.campaigns import make_campaign
from tests.support.db import pg_admin, run_async
from tests.support.e2e import db_call, served, wait_for
from tests.support.live import LiveServer
from tests.support.world import make_world
from webhooks.processing import drain
from webhooks.sync import sync


class Backup:
    """The whole database copied aside and put back, as an operator's backup and restore."""

    def __init__(self, url: str, tmp: Path):
        self.url = url
        self.sqlite = url.startswith("sqlite")
        self.path = Path(url.split("///", 1)[1]) if self.sqlite else None
        self.copy = tmp / "backup.db"
        self.name = url.rsplit("/", 1)[1].split("?", 1)[0]

    def take(self) -> None:
        if self.path is not None:
            shutil.copy(self.path, self.copy)
            for suffix in ("-wal", "-shm"):
                if Path(f"{self.path}{suffix}").exists():
                    shutil.copy(f"{self.path}{suffix}", f"{self.copy}{suffix}")
        else:
            run_async(lambda: pg_admin(f'CREATE DATABASE "{self.name}_backup" TEMPLATE "{self.name}"'))

    def restore(self) -> None:
        if self.path is not None:
            for suffix in ("-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(f"{self.path}{suffix}")
            shutil.copy(self.copy, self.path)
            for suffix in ("-wal", "-shm"):
                if Path(f"{self.copy}{suffix}").exists():
                    shutil.copy(f"{self.copy}{suffix}", f"{self.path}{suffix}")
        else:
            run_async(lambda: pg_admin(f'DROP DATABASE "{self.name}" WITH (FORCE)'))
            run_async(lambda: pg_admin(f'CREATE DATABASE "{self.name}" TEMPLATE "{self.name}_backup"'))
            run_async(lambda: pg_admin(f'DROP DATABASE "{self.name}_backup"'))


def with_gateway(settings, fn):
    async def go(sessions):
        gw = StripeGateway(settings)
        try:
            return await fn(sessions, gw)
        finally:
            await gw.aclose()

    return db_call(settings, go)


def delivered(sb: Sandbox) -> bool:
    with sb.lock:
        return all((e.get("_delivery") or {}).get("delivered_at") for e in sb.store.data["objects"]["event"].values())


def test_a_backup_restored_past_the_idempotency_window_charges_nobody_twice(e2e_settings, tmp_path):
    settings = e2e_settings
    sb = Sandbox(webhook_url=settings.base_url + "/webhooks/stripe", webhook_secret=settings.stripe_webhook_secret,
                 public_base=settings.base_url + SANDBOX_PATH)
    port = int(settings.base_url.rsplit(":", 1)[1])

    def serving() -> LiveServer:
        return LiveServer(served(settings, sb), port)

    with serving():
        world = db_call(settings, make_world)
        campaign = db_call(settings, lambda s: make_campaign(s, world, slug="atelier", mode="all_or_nothing", goal=10_000))
        for n in range(5):
            with_gateway(settings, lambda s, gw, n=n: _promise(settings, gw, s, None, campaign, f"Backer {n}", f"b{n}@example.org",
                                                                20, "pm_card_visa", True))
        wait_for(lambda: delivered(sb), what="the promises' events")
    backup = Backup(settings.database_url, tmp_path)
    backup.take()

    deadline_passed = campaign.ends_at + dt.timedelta(seconds=1)
    with serving():
        with_gateway(settings, lambda s, gw: deadline.run(s, settings, gw, now=deadline_passed))
        wait_for(lambda: delivered(sb), what="the charges' events")
        with_gateway(settings, lambda s, gw: drain(s, gw))
    charged = sorted(pi["id"] for pi in sb.store.all("payment_intent") if pi["status"] == "succeeded")
    assert len(charged) == 5

    async def state(sessions):
        async with sessions() as session:
            pledges = (await session.execute(select(Pledge.status, Pledge.payment_intent_id).where(Pledge.campaign_id == campaign.id)
                                             .order_by(Pledge.id))).all()
            row = await session.get(Campaign, campaign.id)
            entries = await session.scalar(select(func.count(Entry.id)))
            return [tuple(p) for p in pledges], (row.status, row.collected_total), entries

    before = db_call(settings, state)
    assert [s for s, _ in before[0]] == ["paid"] * 5 and sorted(pi for _, pi in before[0]) == charged

    backup.restore()
    sb.advance_clock(25 * 3600)  # past Stripe's 24 h: the saved idempotency keys are forgotten
    assert sb.store.idempotency == {}
    restored = db_call(settings, state)
    assert [s for s, _ in restored[0]] == ["active"] * 5  # the copy knows nothing of the charges

    later = deadline_passed + dt.timedelta(hours=25)
    with serving():
        since = utcnow() - dt.timedelta(days=3)
        with_gateway(settings, lambda s, gw: sync(s, gw, since))  # `funding stripe sync`
        for _ in range(2):  # then every job, twice
            with_gateway(settings, lambda s, gw: deadline.run(s, settings, gw, now=later))
            with_gateway(settings, lambda s, gw: resolve_unknown(s, settings, gw))
            wait_for(lambda: delivered(sb), what="the events after the restore")
            with_gateway(settings, lambda s, gw: drain(s, gw))
    assert sorted(pi["id"] for pi in sb.store.all("payment_intent") if pi["status"] == "succeeded") == charged  # 5, not 10
    after = db_call(settings, state)
    assert after[0] == before[0] and after[1] == before[1] == ("succeeded", 10_000)
