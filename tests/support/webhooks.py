"""Stripe's events in the tests: delivered into the inbox, a paid donation as Stripe's objects,
the entries they book, and workers on PostgreSQL that process them concurrently."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from funding.db import Sessions, create_engine, transaction
from funding.ledger.models import Entry, Posting
from funding.payments.models import Payment
from funding.settings import Settings, load_settings
from funding.stripe_gateway import StripeGateway
from tests.support.db import TEST_SEAL_KEY, sealed_sessions
from tests.support.stripe_objects import BASE, balance_transaction, charge, checkout_session, payment_intent, sid
from webhooks.inbox import store

# The webhook secret of the `stripe_settings` fixture (tests/support/stripe_fixtures.py).
SECRET = "whsec_test_secret_for_webhooks"


async def deliver(engine, *events: dict) -> None:
    """Stripe delivers ``events`` to our endpoint: each lands in the inbox, unprocessed."""
    for evt in events:
        await store(engine, evt, json.dumps(evt))


async def make_payment(sessions, world, amount=5000, email="ana@example.org") -> Payment:
    async with transaction(sessions) as session:
        payment = Payment(org_id=world.org_id, site_id=world.site_id, purpose="donation", amount=amount, currency="EUR",
                          description="Don", email=email, name="Ana", status="open")
        session.add(payment)
    return payment


def paid_donation(fake, world, payment: Payment, *, fee: int = 100, txn_now: bool = True):
    """The Checkout session, PaymentIntent, charge and balance transaction of ``payment`` paid, known to ``fake``."""
    meta = {"purpose": "donation", "site_id": str(world.site_id), "payment_id": str(payment.id), "org_id": str(world.org_id)}
    ch_id = sid("ch")
    pi = payment_intent(amount=payment.amount, metadata=meta, latest_charge=ch_id)
    txn = balance_transaction(amount=payment.amount, fee=fee, source=ch_id)
    ch = charge(amount=payment.amount, txn=txn["id"] if txn_now else None, metadata=meta, payment_intent=pi["id"],
                charge_id=ch_id)
    cs = checkout_session(amount=payment.amount, metadata=meta, payment_intent=pi["id"])
    fake.add(txn, ch, pi, cs)
    return cs, pi, ch, txn


async def entries(sessions) -> list[tuple[str, list[tuple[str, int]]]]:
    """Every entry's source key and postings (account, amount), in the books' order."""
    async with sessions() as session:
        rows = (await session.scalars(select(Entry).order_by(Entry.number))).all()
        out = []
        for entry in rows:
            postings = (await session.scalars(select(Posting).where(Posting.entry_id == entry.id).order_by(Posting.line_no))).all()
            out.append((entry.source_key, [(p.account_number, p.amount) for p in postings]))
    return out


@dataclass
class Workers:
    engine: AsyncEngine
    sessions: Sessions
    settings: Settings
    gateways: list[StripeGateway]


@asynccontextmanager
async def workers_on(pg_url: str, count: int = 1) -> AsyncIterator[Workers]:
    """``count`` workers' gateways to the faked Stripe, with an engine and sealing sessions of ``pg_url``
    (what processes racing each other hold); all closed on the way out."""
    engine = create_engine(pg_url)
    settings = load_settings({}, FUNDING_ENV="test", LEDGER_SEAL_KEY=TEST_SEAL_KEY, DATABASE_URL=pg_url, STRIPE_SECRET_KEY="sk_test_x",
                             STRIPE_WEBHOOK_SECRET="whsec_x", STRIPE_API_BASE=BASE)
    gateways = [StripeGateway(settings) for _ in range(count)]
    try:
        yield Workers(engine, sealed_sessions(engine), settings, gateways)
    finally:
        for gateway in gateways:
            await gateway.aclose()
        await engine.dispose()
