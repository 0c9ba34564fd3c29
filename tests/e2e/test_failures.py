"""Through the sandbox: a payout the bank sends back and a refund the card network refuses,
from Stripe's webhooks to reversing entries in the books, reconciled."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from funding.ledger.models import Entry, Posting
from funding.payments.models import Payout
from funding.payments.reconcile import reconcile
from funding.stripe_gateway import SANDBOX_PATH, StripeGateway
from tests.support.e2e import DAY, HOUR, advance, books_match_stripe, db_call, donate, pay_on_hosted_page, sandbox_get, wait_for
from tests.support.world import make_world


def _donation(e2e, card: str) -> None:
    world = db_call(e2e.settings, make_world)
    with httpx.Client(base_url=e2e.url, follow_redirects=False, timeout=20) as client:
        paid = pay_on_hosted_page(client, donate(client, world), card, email=None)
        assert paid.status_code in (302, 303)
    wait_for(lambda: _entries(e2e, "stripe:txn_%"), what="the donation's entry")


def _entries(e2e, like: str = "stripe:%"):
    async def go(sessions):
        async with sessions() as session:
            rows = (await session.scalars(select(Entry).where(Entry.source_key.like(like)).order_by(Entry.number))).all()
            out = []
            for entry in rows:
                lines = (await session.scalars(select(Posting).where(Posting.entry_id == entry.id).order_by(Posting.line_no))).all()
                out.append((entry.source_key.removeprefix("stripe:"), entry.reverses_id, entry.id,
                            {p.account_number: p.amount for p in lines}))
            return out

    return db_call(e2e.settings, go)


def test_a_failed_payout_is_reversed_and_its_money_goes_out_with_the_next_one(e2e):
    _donation(e2e, "4242 4242 4242 4242")
    armed = httpx.post(f"{e2e.url}{SANDBOX_PATH}/_admin/payouts/fail", data={"failure_code": "account_closed"}, timeout=10)
    assert armed.status_code == 200
    advance(e2e, 4 * DAY)
    (failed,) = sandbox_get(e2e, "/v1/payouts")["data"]
    assert failed["status"] == "failed" and failed["failure_code"] == "account_closed"

    def booked():
        rows = {key: (reverses, entry_id, lines) for key, reverses, entry_id, lines in _entries(e2e)}
        return rows if failed["failure_balance_transaction"] in rows and failed["balance_transaction"] in rows else None

    rows = wait_for(booked, what="the payout and its reversal in the books")
    _r, payout_entry, payout_lines = rows[failed["balance_transaction"]]
    reverses, _id, back_lines = rows[failed["failure_balance_transaction"]]
    assert payout_lines == {"512": 4900, "5115": -4900} and back_lines == {"512": -4900, "5115": 4900}
    assert reverses == payout_entry
    assert not any("467" in lines for _r, _i, lines in rows.values())
    books_match_stripe(e2e)  # the money the bank sent back is in Stripe's balance again, and on 5115

    # Two days later the money goes out again, and this payout arrives.
    advance(e2e, 2 * DAY)
    payouts = sandbox_get(e2e, "/v1/payouts")["data"]
    assert [p["status"] for p in payouts] == ["paid", "failed"]
    wait_for(lambda: payouts[0]["balance_transaction"] in {k for k, *_ in _entries(e2e)}, what="the second payout's entry")

    async def check(sessions):
        gw = StripeGateway(e2e.settings)
        try:
            checks = await reconcile(sessions, gw, only_unreconciled=False)
        finally:
            await gw.aclose()
        async with sessions() as session:
            rows = {p.id: (p.status, p.reconciled) for p in (await session.scalars(select(Payout))).all()}
        return checks, rows

    checks, rows = db_call(e2e.settings, check)
    books_match_stripe(e2e)
    assert sorted((c.payout_id, c.ok) for c in checks) == sorted([(failed["id"], True), (payouts[0]["id"], True)])
    assert rows == {failed["id"]: ("failed", True), payouts[0]["id"]: ("paid", True)}


def test_a_refund_that_fails_later_reverses_the_refunds_entry(e2e):
    _donation(e2e, "4000 0000 0000 5126")
    (payment,) = sandbox_get(e2e, "/v1/payment_intents")["data"]

    async def refund(_sessions):
        gw = StripeGateway(e2e.settings)
        try:
            return await gw.create("refunds", {"payment_intent": payment["id"], "amount": 2000}, key="e2e-refund-fails")
        finally:
            await gw.aclose()

    made = db_call(e2e.settings, refund)
    assert made["status"] == "succeeded"
    wait_for(lambda: made["balance_transaction"] in {k for k, *_ in _entries(e2e)}, what="the refund's entry")
    books_match_stripe(e2e)
    advance(e2e, 2 * HOUR)
    failed = sandbox_get(e2e, f"/v1/refunds/{made['id']}")
    assert failed["status"] == "failed"

    def reversed_():
        rows = {key: (reverses, entry_id, lines) for key, reverses, entry_id, lines in _entries(e2e)}
        return rows if failed["failure_balance_transaction"] in rows else None

    rows = wait_for(reversed_, what="the failed refund's reversal")
    _r, refund_entry, refund_lines = rows[made["balance_transaction"]]
    reverses, _id, back_lines = rows[failed["failure_balance_transaction"]]
    assert reverses == refund_entry and back_lines == {k: -v for k, v in refund_lines.items()}
    books_match_stripe(e2e)
