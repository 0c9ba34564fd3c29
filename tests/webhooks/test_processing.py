"""Events into effects: exactly once, in any order, whichever path gets there first."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import httpx
import pytest
from sqlalchemy import func, select

from funding.db import transaction
from funding.ledger.models import Entry
from funding.ledger.service import close_month, trial_balance
from funding.mail.models import Email
from funding.payments import books
from funding.payments.models import Payment, Payout, StripeEvent, StripeObject
from funding.payments.reconcile import balance_check, reconcile
from funding.payments.service import settle_session
from tests.support.stripe_objects import (
    BASE,
    balance_transaction,
    dispute,
    event,
    payout,
    refund,
    sid,
    subscription,
)
from tests.support.webhooks import deliver, entries, make_payment, paid_donation, workers_on
from webhooks.inbox import MAX_ATTEMPTS, store
from webhooks.processing import drain, process_due


async def test_a_paid_donation_becomes_one_balanced_entry_with_stripes_fee(engine, sessions, world, gw, fake_stripe):
    payment = await make_payment(sessions, world)
    cs, pi, ch, txn = paid_donation(fake_stripe, world, payment, fee=100)
    await deliver(engine, event("checkout.session.completed", cs), event("charge.succeeded", ch),
                  event("payment_intent.succeeded", pi))
    assert await drain(sessions, gw) == 3
    assert await entries(sessions) == [(f"stripe:{txn['id']}", [("5115", 4900), ("627", 100), ("75411", -5000)])]
    async with sessions() as session:
        entry = await session.scalar(select(Entry))
        paid = await session.get(Payment, payment.id)
        emails = (await session.scalars(select(Email))).all()
        statuses = set((await session.scalars(select(StripeEvent.status))).all())
    assert (entry.journal_code, entry.funding_source, entry.site_id, entry.piece_ref) == ("ST", "crowdfunding", world.site_id, ch["id"])
    assert paid.status == "paid" and paid.payment_intent_id == pi["id"] and paid.checkout_session_id == cs["id"]
    assert [e.dedupe_key for e in emails] == [f"payment:{payment.id}:receipt"]
    assert statuses == {"processed"}


async def test_the_same_event_twice_and_every_path_in_any_order_give_one_effect(engine, sessions, world, gw, fake_stripe):
    payment = await make_payment(sessions, world)
    cs, pi, ch, txn = paid_donation(fake_stripe, world, payment)
    evt = event("charge.succeeded", ch)
    await deliver(engine, evt)
    await drain(sessions, gw)
    await deliver(engine, evt)  # Stripe delivers again: stored once, nothing new to process
    assert await process_due(sessions, gw) == 0
    # The backer's return page and a sync get there later, by other paths.
    async with transaction(sessions) as session:
        await settle_session(session, cs)
    await books.ingest(sessions, gw, [txn["id"]])
    await deliver(engine, event("checkout.session.completed", cs), event("payment_intent.succeeded", pi))
    await drain(sessions, gw)
    assert len(await entries(sessions)) == 1
    async with sessions() as session:
        assert await session.scalar(select(func.count(Email.id))) == 1
        # paid by its charge's event first, the payment still learns its Checkout session
        assert (await session.get(Payment, payment.id)).checkout_session_id == cs["id"]


@pytest.mark.postgres_only
async def test_the_same_event_processed_concurrently_on_postgresql_has_one_effect(pg_url, fake_stripe):
    from tests.support.world import make_world

    async with workers_on(pg_url, 4) as workers:
        engine, sessions, gws = workers.engine, workers.sessions, workers.gateways
        world = await make_world(sessions)
        payment = await make_payment(sessions, world)
        cs, pi, ch, _txn = paid_donation(fake_stripe, world, payment)
        events = [event("charge.succeeded", ch), event("checkout.session.completed", cs), event("payment_intent.succeeded", pi)]
        # Four deliveries of each at once, and four workers processing at once.
        await asyncio.gather(*(store(engine, e, json.dumps(e)) for e in events for _ in range(4)))
        await asyncio.gather(*(drain(sessions, g, batch=1) for g in gws))
        await drain(sessions, gws[0])
        assert len(await entries(sessions)) == 1
        async with sessions() as session:
            assert await session.scalar(select(func.count(StripeEvent.id))) == 3
            assert await session.scalar(select(func.count(Email.id))) == 1
            assert set((await session.scalars(select(StripeEvent.status))).all()) == {"processed"}


async def test_a_fee_that_appears_later_is_booked_when_it_appears(engine, sessions, world, gw, fake_stripe):
    payment = await make_payment(sessions, world)
    _cs, _pi, ch, txn = paid_donation(fake_stripe, world, payment, txn_now=False)
    await deliver(engine, event("charge.succeeded", ch))
    await drain(sessions, gw)
    assert await entries(sessions) == []  # no balance transaction yet: nothing guessed
    fake_stripe.add({**ch, "balance_transaction": txn["id"]})
    await deliver(engine, event("charge.updated", {**ch, "balance_transaction": txn["id"]}))
    await drain(sessions, gw)
    assert (await entries(sessions))[0][1] == [("5115", 4900), ("627", 100), ("75411", -5000)]


async def test_a_partial_refund_made_in_the_dashboard_is_booked_from_its_balance_transaction(engine, sessions, world, gw,
                                                                                            fake_stripe):
    payment = await make_payment(sessions, world, amount=8000)
    _cs, _pi, ch, _txn = paid_donation(fake_stripe, world, payment, fee=145)
    await deliver(engine, event("charge.succeeded", ch))
    await drain(sessions, gw)
    re_txn = balance_transaction(amount=-3000, fee=0, type="refund", source="re_x")
    re = refund(amount=3000, charge_id=ch["id"], txn=re_txn["id"])
    re_txn["source"] = re["id"]
    refunded = {**ch, "amount_refunded": 3000, "refunds": {**ch["refunds"], "data": [re]}}
    fake_stripe.add(re_txn, re, refunded)
    await deliver(engine, event("charge.refunded", refunded), event("refund.created", re), event("refund.updated", re))
    await drain(sessions, gw)
    posted = await entries(sessions)
    assert posted[1] == (f"stripe:{re_txn['id']}", [("5115", -3000), ("75411", 3000)])
    assert len(posted) == 2
    async with sessions() as session:
        assert (await session.get(Payment, payment.id)).amount_refunded == 3000
        gifts = {r.account: r for r in await trial_balance(session, org_id=world.org_id)}["75411"]
        label = await session.scalar(select(Entry.label).where(Entry.number == 2))
    assert gifts.balance == -5000 and label.startswith("Remboursement")


@pytest.mark.parametrize("outcome", ["lost", "won"])
async def test_a_dispute_withdraws_funds_with_its_fee_and_reinstates_them_if_won(engine, sessions, world, gw, fake_stripe,
                                                                                 outcome):
    payment = await make_payment(sessions, world)
    _cs, _pi, ch, _txn = paid_donation(fake_stripe, world, payment)
    withdrawal = balance_transaction(amount=-5000, fee=2000, type="adjustment", category="dispute", source="dp_x")
    dp = dispute(amount=5000, charge_id=ch["id"], status="needs_response", txns=[withdrawal])
    withdrawal["source"] = dp["id"]
    fake_stripe.add(withdrawal, dp)
    created = event("charge.dispute.created", dp)
    await deliver(engine, event("charge.succeeded", ch), created, event("charge.dispute.funds_withdrawn", dp))
    await drain(sessions, gw)
    await deliver(engine, {**created, "id": sid("evt")})  # a duplicate under another event id posts nothing either
    await drain(sessions, gw)
    posted = await entries(sessions)
    assert posted[1] == (f"stripe:{withdrawal['id']}", [("5115", -7000), ("627", 2000), ("75411", 5000)])
    assert len(posted) == 2
    if outcome == "won":
        reinstated = balance_transaction(amount=5000, fee=0, type="adjustment", category="dispute_reversal", source=dp["id"])
        won = {**dp, "status": "won", "balance_transactions": [withdrawal, reinstated]}
        fake_stripe.add(reinstated, won)
        await deliver(engine, event("charge.dispute.funds_reinstated", won), event("charge.dispute.closed", won))
        await drain(sessions, gw)
        posted = await entries(sessions)
        assert posted[2] == (f"stripe:{reinstated['id']}", [("5115", 5000), ("75411", -5000)]) and len(posted) == 3
    else:
        fake_stripe.add({**dp, "status": "lost"})
        await deliver(engine, event("charge.dispute.closed", {**dp, "status": "lost"}))
        await drain(sessions, gw)
        assert len(await entries(sessions)) == 2
    async with sessions() as session:
        assert (await session.get(StripeObject, dp["id"])).status == ("won" if outcome == "won" else "lost")


async def test_a_payout_moves_the_stripe_balance_to_the_bank_and_is_reconciled(engine, sessions, world, gw, fake_stripe):
    payment = await make_payment(sessions, world)
    _cs, _pi, ch, txn = paid_donation(fake_stripe, world, payment)
    po_txn = balance_transaction(amount=-4900, fee=0, type="payout", source="po_x")
    po = payout(amount=4900, txn=po_txn["id"])
    po_txn["source"] = po["id"]
    fake_stripe.add(po_txn, po)
    fake_stripe.lists["balance_transactions"] = [{**txn, "_payout": po["id"]}, {**po_txn, "_payout": po["id"]}]
    fake_stripe.lists["payouts"] = [po]
    await deliver(engine, event("charge.succeeded", ch), event("payout.paid", po))
    await drain(sessions, gw)
    assert await entries(sessions) == [(f"stripe:{txn['id']}", [("5115", 4900), ("627", 100), ("75411", -5000)]),
                                       (f"stripe:{po_txn['id']}", [("512", 4900), ("5115", -4900)])]
    checks = await reconcile(sessions, gw)
    assert [c.ok for c in checks] == [True]
    async with sessions() as session:
        assert (await session.get(Payout, po["id"])).reconciled is True


async def test_a_payout_that_does_not_add_up_or_lacks_an_entry_stays_unreconciled(engine, sessions, world, gw, fake_stripe):
    payment = await make_payment(sessions, world)
    _cs, _pi, ch, txn = paid_donation(fake_stripe, world, payment)
    unbooked = balance_transaction(amount=1000, fee=40, source="ch_other")
    po_txn = balance_transaction(amount=-5900, fee=0, type="payout", source="po_x")
    po = payout(amount=5900, txn=po_txn["id"])
    fake_stripe.add(po_txn, po)
    fake_stripe.lists["balance_transactions"] = [{**t, "_payout": po["id"]} for t in (txn, unbooked, po_txn)]
    fake_stripe.lists["payouts"] = [po]
    await deliver(engine, event("charge.succeeded", ch), event("payout.paid", po))
    await drain(sessions, gw)
    (check,) = await reconcile(sessions, gw)
    assert not check.ok and check.missing == [unbooked["id"]] and check.difference == 5900 - (4900 + 960)
    async with sessions() as session:
        row = await session.get(Payout, po["id"])
    assert row.reconciled is False and json.loads(row.missing_entries) == [unbooked["id"]] and row.difference == 40


async def test_the_books_stripe_account_is_checked_against_stripe_s_balance_to_the_cent(engine, sessions, world, gw,
                                                                                        fake_stripe):
    """``funding reconcile --balance``: 5115 in the books against available + pending at Stripe, per currency."""
    payment = await make_payment(sessions, world)
    _cs, _pi, ch, _txn = paid_donation(fake_stripe, world, payment)
    await deliver(engine, event("charge.succeeded", ch))
    await drain(sessions, gw)
    balance = fake_stripe.router.get(f"{BASE}/v1/balance")
    balance.mock(return_value=httpx.Response(200, json={"object": "balance", "livemode": False,
                                                        "available": [{"amount": 900, "currency": "eur"}],
                                                        "pending": [{"amount": 4000, "currency": "eur"}]}))
    assert [(c.currency, c.ledger, c.stripe, c.ok) for c in await balance_check(sessions, gw)] == [("EUR", 4900, 4900, True)]
    # Stripe holds 40 cents more (a transaction the books never saw), and a currency the books do not have.
    balance.mock(return_value=httpx.Response(200, json={"object": "balance", "livemode": False,
                                                        "available": [{"amount": 940, "currency": "eur"},
                                                                      {"amount": 300, "currency": "usd"}],
                                                        "pending": [{"amount": 4000, "currency": "eur"}]}))
    checks = await balance_check(sessions, gw)
    assert [(c.currency, c.difference, c.ok) for c in checks] == [("EUR", -40, False), ("USD", -300, False)]
    # 4 000 on its way to the bank: out of Stripe's balance, still on 5115 until the payout is paid.
    fake_stripe.lists["payouts"] = [payout(amount=4000, txn="txn_in_transit", status="in_transit")]
    balance.mock(return_value=httpx.Response(200, json={"object": "balance", "livemode": False,
                                                        "available": [{"amount": 900, "currency": "eur"}],
                                                        "pending": []}))
    assert [(c.currency, c.stripe, c.ok) for c in await balance_check(sessions, gw)] == [("EUR", 4900, True)]


async def test_an_older_subscription_update_after_deletion_leaves_it_canceled(engine, sessions, world, gw, fake_stripe):
    sub = subscription(status="canceled")
    # Stripe has forgotten it (404): only the payloads and their timestamps remain to order them.
    deleted = event("customer.subscription.deleted", sub, created=2_000_000_000)
    older = event("customer.subscription.updated", {**sub, "status": "active"}, created=1_999_999_000)
    await deliver(engine, deleted)
    await drain(sessions, gw)
    await deliver(engine, older)
    await drain(sessions, gw)
    async with sessions() as session:
        assert (await session.get(StripeObject, sub["id"])).status == "canceled"
    # With Stripe reachable, the current object is fetched: the answer is the same.
    fake_stripe.add(sub)
    await deliver(engine, event("customer.subscription.updated", {**sub, "status": "active"}, created=1_999_999_500))
    await drain(sessions, gw)
    async with sessions() as session:
        assert (await session.get(StripeObject, sub["id"])).status == "canceled"


async def test_unknown_event_types_are_stored_acknowledged_and_done(engine, sessions, gw):
    evt = event("issuing_card.created", {"id": "ic_1", "object": "issuing.card"})
    await deliver(engine, evt)
    await drain(sessions, gw)
    async with sessions() as session:
        assert (await session.get(StripeEvent, evt["id"])).status == "processed"


async def test_a_failing_event_is_retried_then_dead_lettered_and_does_not_block_others(engine, sessions, world, gw, fake_stripe):
    payment = await make_payment(sessions, world)
    _cs, _pi, ch, _txn = paid_donation(fake_stripe, world, payment)
    broken = event("charge.succeeded", {"id": "ch_missing", "object": "charge"})  # Stripe answers 404
    await deliver(engine, broken, event("charge.succeeded", ch))
    await drain(sessions, gw)
    assert len(await entries(sessions)) == 1  # the good one went through
    async with sessions() as session:
        row = await session.get(StripeEvent, broken["id"])
    assert row.status == "failed" and row.attempts == 1 and "No such object" in row.last_error
    for _attempt in range(2, MAX_ATTEMPTS + 1):
        async with transaction(sessions) as session:
            (await session.get(StripeEvent, broken["id"])).next_attempt_at = dt.datetime(2000, 1, 1)
        await drain(sessions, gw)
    async with sessions() as session:
        row = await session.get(StripeEvent, broken["id"])
    assert row.status == "dead" and row.attempts == MAX_ATTEMPTS


async def test_a_batch_that_fails_as_a_whole_is_applied_one_by_one(engine, sessions, world, gw, fake_stripe, monkeypatch):
    good = await make_payment(sessions, world)
    _, _, ch, _ = paid_donation(fake_stripe, world, good)
    other = await make_payment(sessions, world, amount=2000)
    _, _, bad_ch, _ = paid_donation(fake_stripe, world, other)
    bad_ch["metadata"]["site_id"] = "999999"  # a site that does not exist: books it in suspense, not a failure
    fake_stripe.add(bad_ch)
    await deliver(engine, event("charge.succeeded", ch), event("charge.succeeded", bad_ch))
    await drain(sessions, gw)
    posted = await entries(sessions)
    assert len(posted) == 2 and ("467", -2000) in posted[1][1]


async def test_a_movement_dated_in_a_closed_month_is_booked_on_the_first_open_day(engine, sessions, world, gw, fake_stripe):
    last_month = dt.date.today().replace(day=1) - dt.timedelta(days=1)
    async with transaction(sessions) as session:
        await close_month(session, world.org_id, last_month.strftime("%Y-%m"))
    payment = await make_payment(sessions, world)
    _cs, _pi, ch, txn = paid_donation(fake_stripe, world, payment)
    txn["created"] = int(dt.datetime.combine(last_month, dt.time(12)).timestamp())
    fake_stripe.add(txn)
    await deliver(engine, event("charge.succeeded", ch))
    await drain(sessions, gw)
    async with sessions() as session:
        entry = await session.scalar(select(Entry))
    assert entry.entry_date == last_month + dt.timedelta(days=1) and entry.piece_date == last_month


async def test_dead_letters_are_visible_and_replayable_from_the_back_office(engine, sessions, world, settings, gw, fake_stripe):
    import httpx

    from funding.app import create_app
    from tests.support.web import csrf_of, login_as

    broken = event("charge.succeeded", {"id": "ch_gone", "object": "charge"})
    await deliver(engine, broken)
    await drain(sessions, gw)
    async with transaction(sessions) as session:
        (await session.get(StripeEvent, broken["id"])).status = "dead"
    app = create_app(settings.with_(stripe_secret_key="sk_test_x", stripe_api_base="http://stripe.test"), process_events=False)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        await login_as(client, sessions, settings, world.users["staff"])
        page = await client.get("/admin/stripe?status=dead")
        assert broken["id"] in page.text and "No such object" in page.text
        response = await client.post(f"/admin/stripe/events/{broken['id']}/replay", data={"csrf_token": csrf_of(page.text)})
        assert response.status_code == 303
    async with sessions() as session:
        row = await session.get(StripeEvent, broken["id"])
    assert (row.status, row.attempts) == ("pending", 0)


async def listed_donations(engine, sessions, world, fake_stripe, amounts: list[int]) -> None:
    """Paid donations whose balance transactions Stripe's list holds; their charge.succeeded
    events delivered, and the fake's request log cleared."""
    donations = []
    for amount in amounts:
        payment = await make_payment(sessions, world, amount=amount)
        donations.append(paid_donation(fake_stripe, world, payment))
    fake_stripe.lists["balance_transactions"] = [txn for _, _, _, txn in donations]
    await deliver(engine, *(event("charge.succeeded", ch) for _, _, ch, _ in donations))
    fake_stripe.requests.clear()


async def test_a_batch_reads_its_balance_transactions_in_one_list_call(engine, sessions, world, gw, fake_stripe):
    await listed_donations(engine, sessions, world, fake_stripe, [1000 + n for n in range(5)])
    await drain(sessions, gw)
    paths = [r.url.path for r in fake_stripe.requests]
    assert paths == ["/v1/balance_transactions"]  # no charge re-read, no transaction read one by one
    # the payloads hold every source (settled charges): the list is read without expanding them
    assert "expand" not in str(fake_stripe.requests[0].url)
    assert [lines for _, lines in await entries(sessions)] == [
        [("5115", 1000 + n - 100), ("627", 100), ("75411", -(1000 + n))] for n in range(5)]


@pytest.mark.postgres_only
async def test_a_drain_shares_its_reads_so_later_batches_resume_the_scan(engine, sessions, world, gw, fake_stripe):
    await listed_donations(engine, sessions, world, fake_stripe, [2000 + n for n in range(6)])
    assert await drain(sessions, gw, batch=2, workers=1) == 6
    paths = [r.url.path for r in fake_stripe.requests]
    assert set(paths) == {"/v1/balance_transactions"}  # never one by one
    assert len(paths) <= 3  # one page read serves the batches after it
    assert len(await entries(sessions)) == 6


async def test_tables_a_backlog_grew_are_analysed_once_they_changed_by_a_fifth(engine, sessions):
    """PostgreSQL: the planner learns the inbox's size (SQLite: nothing to do)."""
    from sqlalchemy import text

    from funding.db import refresh_statistics

    await refresh_statistics(sessions, ["stripe_events"])  # whatever earlier tests left
    await deliver(engine, *(event("payout.paid", {"id": f"po_stats{n}", "object": "payout"}) for n in range(120)))
    if engine.dialect.name == "sqlite":
        assert await refresh_statistics(sessions, ["stripe_events"]) == []
        return
    for _ in range(50):  # a backend flushes its activity counters at most once a second
        analysed = await refresh_statistics(sessions, ["stripe_events"])
        if analysed:
            break
        await asyncio.sleep(0.1)
    assert analysed == ["stripe_events"]
    async with engine.connect() as conn:
        assert await conn.scalar(text("SELECT reltuples FROM pg_class WHERE relname = 'stripe_events'")) == 120
    assert await refresh_statistics(sessions, ["stripe_events"]) == []  # nothing changed since
