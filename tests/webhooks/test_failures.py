"""Payouts the bank sends back and refunds the card network refuses: booked as reversing
entries of what they undo (never an UPDATE, never the suspense account), and reconciled."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from funding.ledger.models import Entry
from funding.ledger.service import trial_balance
from funding.payments.models import Payout, StripeObject
from funding.payments.reconcile import check_payout, reconcile
from tests.support.stripe_objects import balance_transaction, event, payout, refund
from tests.support.webhooks import deliver, entries, make_payment, paid_donation
from webhooks.processing import drain


def _paid_payout(fake_stripe, txn, amount=4900, *, automatic=True):
    po_txn = balance_transaction(amount=-amount, fee=0, type="payout", source="po_x")
    po = {**payout(amount=amount, txn=po_txn["id"]), "automatic": automatic}
    po_txn["source"] = po["id"]
    fake_stripe.add(po_txn, po)
    fake_stripe.lists["balance_transactions"] = [{**txn, "_payout": po["id"]}, {**po_txn, "_payout": po["id"]}]
    fake_stripe.lists["payouts"] = [po]
    return po, po_txn


def _failed(fake_stripe, po, code="account_closed"):
    back = balance_transaction(amount=po["amount"], fee=0, type="payout_failure", category="payout_reversal", source=po["id"])
    failed = {**po, "status": "failed", "failure_code": code, "failure_balance_transaction": back["id"],
              "failure_message": "The bank account has been closed."}
    fake_stripe.add(back, failed)
    fake_stripe.lists["payouts"] = [failed]
    return failed, back


async def _balances(sessions, world) -> dict[str, int]:
    async with sessions() as session:
        return {r.account: r.balance for r in await trial_balance(session, org_id=world.org_id)}


async def test_a_payout_the_bank_sends_back_after_it_was_paid_is_reversed_not_parked_in_467(engine, sessions, world, gw,
                                                                                            fake_stripe):
    payment = await make_payment(sessions, world)
    _cs, _pi, ch, txn = paid_donation(fake_stripe, world, payment)
    po, po_txn = _paid_payout(fake_stripe, txn)
    await deliver(engine, event("charge.succeeded", ch), event("payout.paid", po))
    await drain(sessions, gw)
    assert (await _balances(sessions, world))["512"] == 4900
    failed, back = _failed(fake_stripe, po)
    await deliver(engine, event("payout.failed", failed))
    await drain(sessions, gw)
    await deliver(engine, event("payout.failed", failed))  # at least once: no second effect
    await drain(sessions, gw)
    posted = await entries(sessions)
    assert posted[1:] == [(f"stripe:{po_txn['id']}", [("512", 4900), ("5115", -4900)]),
                          (f"stripe:{back['id']}", [("512", -4900), ("5115", 4900)])]
    async with sessions() as session:
        original = await session.scalar(select(Entry).where(Entry.source_key == f"stripe:{po_txn['id']}"))
        reversal = await session.scalar(select(Entry).where(Entry.source_key == f"stripe:{back['id']}"))
        row = await session.get(Payout, po["id"])
    assert reversal.reverses_id == original.id and "rejeté par la banque (account_closed)" in reversal.label
    balances = await _balances(sessions, world)
    assert balances.get("512", 0) == 0 and balances["5115"] == 4900 and "467" not in balances
    assert row.status == "failed"
    # Reconciliation: the failed payout's own entry and its reversal are both in the books.
    checks = await reconcile(sessions, gw)
    assert [(c.payout_id, c.ok) for c in checks] == [(po["id"], True)]


async def test_a_payout_that_fails_before_any_other_event_books_it_then_its_reversal(engine, sessions, world, gw, fake_stripe):
    payment = await make_payment(sessions, world)
    _cs, _pi, ch, txn = paid_donation(fake_stripe, world, payment)
    po, po_txn = _paid_payout(fake_stripe, txn)
    failed, back = _failed(fake_stripe, {**po, "status": "in_transit"}, code="no_account")
    await deliver(engine, event("charge.succeeded", ch), event("payout.failed", failed))
    await drain(sessions, gw)
    await deliver(engine, event("payout.paid", po))  # late, and out of order: nothing new
    await drain(sessions, gw)
    keys = [key for key, _lines in await entries(sessions)]
    assert sorted(keys) == sorted([f"stripe:{txn['id']}", f"stripe:{po_txn['id']}", f"stripe:{back['id']}"])
    assert keys.index(f"stripe:{po_txn['id']}") < keys.index(f"stripe:{back['id']}")  # what is reversed comes first
    async with sessions() as session:
        row = await session.get(Payout, po["id"])
        reversal = await session.scalar(select(Entry).where(Entry.source_key == f"stripe:{back['id']}"))
    assert row.status == "failed" and reversal.reverses_id is not None
    balances = await _balances(sessions, world)
    assert balances.get("512", 0) == 0 and balances["5115"] == 4900


async def test_a_refund_the_card_network_refuses_reverses_the_refunds_entry(engine, sessions, world, settings, gw, fake_stripe):
    payment = await make_payment(sessions, world, amount=8000)
    _cs, _pi, ch, _txn = paid_donation(fake_stripe, world, payment, fee=145)
    re_txn = balance_transaction(amount=-3000, fee=0, type="refund", source="re_x")
    re = refund(amount=3000, charge_id=ch["id"], txn=re_txn["id"])
    re_txn["source"] = re["id"]
    refunded = {**ch, "amount_refunded": 3000, "refunds": {**ch["refunds"], "data": [re]}}
    fake_stripe.add(re_txn, re, refunded)
    await deliver(engine, event("charge.succeeded", ch), event("refund.created", re))
    await drain(sessions, gw)
    back = balance_transaction(amount=3000, fee=0, type="refund_failure", source=re["id"])
    failed = {**re, "status": "failed", "failure_reason": "expired_or_canceled_card", "failure_balance_transaction": back["id"]}
    fake_stripe.add(back, failed, {**ch, "amount_refunded": 0, "refunds": {**ch["refunds"], "data": [failed]}})
    await deliver(engine, event("refund.failed", failed), event("charge.refund.updated", failed), event("refund.updated", failed))
    await drain(sessions, gw)
    posted = await entries(sessions)
    assert posted[1:] == [(f"stripe:{re_txn['id']}", [("5115", -3000), ("75411", 3000)]),
                          (f"stripe:{back['id']}", [("5115", 3000), ("75411", -3000)])]
    async with sessions() as session:
        original = await session.scalar(select(Entry).where(Entry.source_key == f"stripe:{re_txn['id']}"))
        reversal = await session.scalar(select(Entry).where(Entry.source_key == f"stripe:{back['id']}"))
        mirrored = await session.get(StripeObject, re["id"])
    assert reversal.reverses_id == original.id and "(expired_or_canceled_card)" in reversal.label
    assert mirrored is not None and mirrored.status == "failed"
    assert (await _balances(sessions, world))["75411"] == -8000
    # Staff see it, with Stripe's reason.
    import httpx

    from funding.app import create_app
    from tests.support.web import login_as

    app = create_app(settings.with_(stripe_secret_key="sk_test_x", stripe_api_base="http://stripe.test"), process_events=False)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        await login_as(client, sessions, settings, world.users["staff"])
        page = await client.get("/admin/stripe")
    assert "Virements et remboursements échoués" in page.text and re["id"] in page.text and "expired_or_canceled_card" in page.text


async def test_a_manual_payout_is_never_listed_by_its_id(engine, sessions, world, gw, fake_stripe):
    """Stripe answers 400 to ``balance_transactions?payout=`` a manual payout: reconciliation
    checks its own entry only."""
    payment = await make_payment(sessions, world)
    _cs, _pi, ch, txn = paid_donation(fake_stripe, world, payment)
    po, _po_txn = _paid_payout(fake_stripe, txn, automatic=False)
    await deliver(engine, event("charge.succeeded", ch), event("payout.paid", po))
    await drain(sessions, gw)
    check = await check_payout(sessions, gw, po)
    assert check.ok
    assert not [r for r in fake_stripe.requests if r.url.params.get("payout")]


@pytest.mark.parametrize("status", ["paid", "failed"])
async def test_a_payout_row_moves_to_failed_even_from_paid(sessions, status):
    from funding.db import transaction
    from funding.payments.reconcile import remember_payout

    po = payout(amount=100, txn="txn_x", status="paid")
    async with transaction(sessions) as session:
        await remember_payout(session, po)
    async with transaction(sessions) as session:
        await remember_payout(session, {**po, "status": status})
        await remember_payout(session, {**po, "status": "in_transit"})  # older news never moves it back
    async with sessions() as session:
        assert (await session.get(Payout, po["id"])).status == status


async def test_a_payout_already_reversed_by_hand_is_not_given_back_twice(engine, sessions, world, gw, fake_stripe):
    from funding.db import transaction
    from funding.ledger.service import reverse

    payment = await make_payment(sessions, world)
    _cs, _pi, ch, txn = paid_donation(fake_stripe, world, payment)
    po, po_txn = _paid_payout(fake_stripe, txn)
    await deliver(engine, event("charge.succeeded", ch), event("payout.paid", po))
    await drain(sessions, gw)
    async with transaction(sessions) as session:
        number = await session.scalar(select(Entry.number).where(Entry.source_key == f"stripe:{po_txn['id']}"))
        await reverse(session, world.org_id, number, reason="la banque a rejeté le virement")
    failed, back = _failed(fake_stripe, po)
    await deliver(engine, event("payout.failed", failed))
    await drain(sessions, gw)
    balances = await _balances(sessions, world)
    assert balances.get("512", 0) == 0 and balances["5115"] == 4900
    assert f"stripe:{back['id']}" not in [key for key, _lines in await entries(sessions)]
    (check,) = await reconcile(sessions, gw)
    assert not check.ok and check.missing == [back["id"]]  # a person sees it
