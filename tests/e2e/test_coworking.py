"""Coworking end to end through the offline Stripe sandbox (its clock advanced for renewals):
join on the hosted Checkout page, renew, fail then recover, fail into unpaid, upgrade with
proration, cancel at period end — each with its access and ledger entries; then every
webhook delivered again, in reverse order, and every event processed again: nothing changes."""

from __future__ import annotations

import functools
import json
import re

import httpx
from sqlalchemy import select

from funding.coworking.lifecycle import access_of
from funding.db import transaction
from funding.payments.models import StripeEvent
from funding.stripe_gateway import sign_payload
from tests.support.e2e import (
    DAY,
    FAILS,
    GOOD,
    HOUR,
    advance,
    books_match_stripe,
    change_card,
    db_call,
    facts,
    join,
    member_client,
    sandbox_get,
    settled,
    setup,
    wait_for,
)
from tests.support.web import csrf_of


def check_pairs(e2e, entries, invoices, member):
    """Every paid invoice: [VT] D 411 / C 706 / C 445711, then [ST] D 5115 / D 627 / C 411 with the sandbox's fee."""
    for inv in [i for i in invoices if i.status == "paid"]:
        vt = [e for e in entries if e[0] == "VT" and e[1] == inv.number]
        assert len(vt) == 1, inv.number
        amounts = [line["amount"] for line in json.loads(inv.lines)]  # prorations included: each line split at 20 %
        base = sum((1 if a > 0 else -1) * ((abs(a) * 2000 + 1200) // 2400) for a in amounts)
        assert vt[0][2] == [("411", member, inv.total), ("445711", None, -(inv.total - base)), ("706", None, -base)]
        position = entries.index(vt[0])
        st = entries[position + 1]
        assert st[0] == "ST" and st[2][-1] == ("411", member, -inv.total)
        txn = sandbox_get(e2e, f"/v1/charges/{st[1]}")["balance_transaction"]
        fee = sandbox_get(e2e, f"/v1/balance_transactions/{txn}")["fee"]
        assert st[2][:2] == [("5115", None, inv.total - fee), ("627", None, fee)]


def aux(member_id: int) -> str:
    return f"M{member_id:06d}"


def test_join_and_renew_through_the_sandbox(e2e):
    world = setup(e2e)
    member_id = join(e2e, world, "flex", "Julie Fayolle", "julie@example.org")
    sub, invoices, entries, emails = settled(e2e, member_id, 1)
    assert sub.status == "active" and access_of(sub).granted
    assert [(e[0]) for e in entries] == ["VT", "ST"] and invoices[0].total == 18000
    check_pairs(e2e, entries, invoices, aux(member_id))
    books_match_stripe(e2e)
    assert emails == [f"coworking:{sub.stripe_subscription_id}:welcome"]
    invoice_page = httpx.get(invoices[0].hosted_invoice_url, timeout=10)
    assert "Julie Fayolle" in invoice_page.text or "julie@example.org" in invoice_page.text

    advance(e2e, 31 * DAY + 2 * HOUR)
    sub, invoices, entries, emails = settled(e2e, member_id, 2)
    assert sub.status == "active" and invoices[-1].billing_reason == "subscription_cycle"
    assert [e[0] for e in entries] == ["VT", "ST", "VT", "ST"]
    check_pairs(e2e, entries, invoices, aux(member_id))
    books_match_stripe(e2e)  # the first month's payout included
    assert len(emails) == 1


def test_a_failing_card_then_recovery_and_a_card_failing_into_unpaid(e2e):
    world = setup(e2e)
    claire = join(e2e, world, "flex", "Claire Bouchet", "claire@example.org")
    kevin = join(e2e, world, "flex", "Kévin Lopez", "kevin@example.org")
    settled(e2e, claire, 1)
    settled(e2e, kevin, 1)
    change_card(e2e, claire, FAILS)
    change_card(e2e, kevin, FAILS)
    advance(e2e, 31 * DAY + 2 * HOUR)

    def past_due(member_id):
        sub, invoices, entries, emails, _ = facts(e2e, member_id)
        # Events are processed by concurrent batches: wait for the renewal invoice's row too, not
        # only for the subscription's state and the email, which other events may bring first.
        done = sub.status == "past_due" and any(":failed:1" in e for e in emails) and len(invoices) >= 2 and len(entries) >= 3
        return (sub, invoices, entries, emails) if done else None

    for member_id in (claire, kevin):
        sub, invoices, entries, emails = wait_for(functools.partial(past_due, member_id), timeout=30, what="past due")
        access = access_of(sub)
        assert access.granted and access.reason == "grace"  # a week to sort it out
        assert invoices[-1].status == "open" and invoices[-1].amount_remaining == 18000
        assert [e[0] for e in entries] == ["VT", "ST", "VT"]  # the unpaid renewal is in the books (accrual), not paid

    # Claire puts a working card on file; Stripe's next retry (3 days later) goes through.
    change_card(e2e, claire, GOOD)
    advance(e2e, 3 * DAY + HOUR)
    sub, invoices, entries, emails = settled(e2e, claire, 2)
    assert wait_for(lambda: facts(e2e, claire)[0].status == "active", timeout=30, what="claire active again")
    sub, invoices, entries, emails, _ = facts(e2e, claire)
    assert access_of(sub).granted and sub.past_due_since is None
    check_pairs(e2e, entries, invoices, aux(claire))
    assert [e for e in emails if ":failed:" in e] == [f"coworking:{invoices[-1].stripe_invoice_id}:failed:1"]

    # Kévin's card keeps failing: retries at +3, +5 and +7 days, then unpaid.
    advance(e2e, 5 * DAY)

    def unpaid():
        sub, invoices, entries, emails, _ = facts(e2e, kevin)
        return (sub, invoices, entries, emails) if sub.status == "unpaid" else None

    sub, invoices, entries, emails = wait_for(unpaid, timeout=30, what="kevin unpaid")
    assert not access_of(sub).granted
    wait_for(lambda: sum(":failed:" in e for e in facts(e2e, kevin)[3]) == 4, timeout=30, what="four failure emails")
    sub, invoices, entries, emails, _ = facts(e2e, kevin)
    assert [e.rsplit(":", 1)[-1] for e in emails if ":failed:" in e] == ["1", "2", "3", "4"]
    assert f"coworking:{sub.stripe_subscription_id}:unpaid" in emails
    assert [e[0] for e in entries] == ["VT", "ST", "VT"]  # the unpaid invoice sold once, never settled


def test_an_upgrade_with_proration_then_cancel_at_period_end(e2e):
    world = setup(e2e)
    member_id = join(e2e, world, "flex", "Sébastien Roche", "sebastien@example.org")
    settled(e2e, member_id, 1)
    advance(e2e, 10 * DAY)
    with member_client(e2e, member_id) as client:
        home = client.get("/membre")
        sub_id = re.search(r'/membre/formule\?subscription=(\d+)', home.text).group(1)
        choose = client.get(f"/membre/formule?subscription={sub_id}")
        plan_id = re.search(r'name="plan" value="(\d+)"', choose.text).group(1)
        preview = client.post("/membre/formule", data={"csrf_token": csrf_of(choose.text), "subscription": sub_id,
                                                       "plan": plan_id})
        assert preview.status_code == 200 and "À payer maintenant" in preview.text
        due_text = re.search(r'id="amount-due"><strong>([^<]+)</strong>', preview.text).group(1)
        token = re.search(r'name="token" value="([^"]+)"', preview.text).group(1)
        done = client.post("/membre/formule/confirmer", data={"csrf_token": csrf_of(preview.text), "token": token})
        assert done.status_code == 303
        assert "Votre formule est maintenant « Poste fixe »" in client.get("/membre").text
    sub, invoices, entries, emails = settled(e2e, member_id, 2)
    upgrade = invoices[-1]
    assert upgrade.billing_reason == "subscription_update" and 0 < upgrade.total < 26400
    from funding.i18n import money

    assert due_text == money(upgrade.total)  # what the preview announced is what was charged
    lines = json.loads(upgrade.lines)
    assert sorted(line["amount"] > 0 for line in lines) == [False, True] and all(line["proration"] for line in lines)
    check_pairs(e2e, entries, invoices, aux(member_id))
    assert sub.plan_id is not None

    with member_client(e2e, member_id) as client:
        home = client.get("/membre")
        canceled = client.post("/membre/resilier", data={"csrf_token": csrf_of(home.text), "subscription": sub_id})
        assert canceled.status_code in (302, 303), canceled.text[:500]  # seen failing once under CI load: say why
    sub = facts(e2e, member_id)[0]
    assert sub.cancel_at_period_end and sub.status == "active" and access_of(sub).granted
    advance(e2e, 21 * DAY + 2 * HOUR)

    def ended():
        sub = facts(e2e, member_id)[0]
        return sub if sub.status == "canceled" else None

    sub = wait_for(ended, timeout=30, what="the subscription ended at period end")
    assert not access_of(sub).granted
    sub, invoices, entries, emails, _ = facts(e2e, member_id)
    assert len(invoices) == 2 and emails[-1].endswith(":ended")


def test_webhooks_delivered_again_in_reverse_order_and_reprocessed_change_nothing(e2e):
    world = setup(e2e)
    member_id = join(e2e, world, "flex", "Thomas Granet", "thomas@example.org")
    other = join(e2e, world, "fixe", "Élise Montagnon", "elise@example.org")
    settled(e2e, member_id, 1)
    change_card(e2e, other, FAILS)
    advance(e2e, 31 * DAY + 2 * HOUR)
    settled(e2e, member_id, 2)
    wait_for(lambda: facts(e2e, other)[0].status == "past_due", timeout=30, what="past due")

    def all_delivered():
        rows = sandbox_get(e2e, "/_admin/events")["data"]
        return rows if all((e.get("sandbox_delivery") or {}).get("delivered_at") for e in rows) else None

    events = wait_for(all_delivered, timeout=30, what="every webhook delivered")
    wait_for(lambda: _all_processed(e2e), timeout=30, what="every event processed")
    before = [facts(e2e, m) for m in (member_id, other)]

    # Stripe delivers everything again, newest first: acknowledged, stored once, nothing new.
    secret = e2e.settings.stripe_webhook_secret
    for evt in reversed(events):
        evt = {k: v for k, v in evt.items() if k != "sandbox_delivery"}
        body = json.dumps(evt).encode()
        response = httpx.post(f"{e2e.url}/webhooks/stripe", content=body, timeout=10,
                              headers={"stripe-signature": sign_payload(body, secret), "content-type": "application/json"})
        assert response.status_code == 200 and response.json()["duplicate"] is True

    # Every event processed once more (a replay of the whole inbox), twice.
    async def replay(sessions):
        from sqlalchemy import update

        async with transaction(sessions) as session:
            await session.execute(update(StripeEvent).values(status="pending", attempts=0))

    for _ in range(2):
        db_call(e2e.settings, replay)
        wait_for(lambda: _all_processed(e2e), timeout=60, what="every event processed again")
    after = [facts(e2e, m) for m in (member_id, other)]
    for b, a in zip(before, after, strict=True):
        assert (b[0].status, b[0].plan_id, b[0].version <= a[0].version) == (a[0].status, a[0].plan_id, True)
        assert [(i.stripe_invoice_id, i.status, i.amount_remaining) for i in b[1]] == \
            [(i.stripe_invoice_id, i.status, i.amount_remaining) for i in a[1]]
        assert b[2] == a[2] and b[3] == a[3]


def _all_processed(e2e) -> bool:
    async def go(sessions):
        async with sessions() as session:
            statuses = set((await session.scalars(select(StripeEvent.status))).all())
        return statuses == {"processed"}

    return db_call(e2e.settings, go)
