"""A member's life through webhooks (Stripe faked with respx): join, renew, fail then
recover, fail into unpaid, upgrade with proration, cancel at period end — with the access
each state gives and the ledger entries each payment makes; replays and reordering change
nothing."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import func, select, update

from funding.coworking.lifecycle import access_of, apply_subscription, member_access
from funding.coworking.models import Invoice, Subscription
from funding.db import transaction, utcnow
from funding.ledger.models import Entry, Posting
from funding.mail.models import Email
from funding.payments.models import StripeEvent
from funding.payments.service import reset_event
from tests.support.coworking import DAY, MONTH, Story, line, make_catalogue, new_member
from tests.support.stripe_objects import event, now
from tests.support.webhooks import deliver, workers_on
from tests.support.world import make_world
from webhooks.processing import drain


async def ledger(sessions) -> list[tuple[str, str, list[tuple[str, str | None, int]]]]:
    async with sessions() as session:
        rows = (await session.scalars(select(Entry).where(Entry.journal_code.in_(("VT", "ST"))).order_by(Entry.number))).all()
        out = []
        for entry in rows:
            postings = (await session.scalars(select(Posting).where(Posting.entry_id == entry.id)
                                              .order_by(Posting.line_no))).all()
            out.append((entry.journal_code, entry.piece_ref, [(p.account_number, p.aux_code, p.amount) for p in postings]))
    return out


async def state(sessions, member):
    async with sessions() as session:
        sub = await session.scalar(select(Subscription).where(Subscription.member_id == member.id))
        emails = (await session.scalars(select(Email.dedupe_key).where(Email.user_id == member.user_id)
                                        .order_by(Email.id))).all()
    return sub, list(emails)


async def snapshot(sessions, member):
    sub, emails = await state(sessions, member)
    async with sessions() as session:
        invoices = (await session.execute(select(Invoice.stripe_invoice_id, Invoice.status, Invoice.amount_remaining,
                                                 Invoice.attempt_count).where(Invoice.member_id == member.id)
                                          .order_by(Invoice.stripe_invoice_id))).all()
    return (sub.status, sub.plan_id, sub.cancel_at_period_end, sub.past_due_since is not None), emails, invoices, \
        await ledger(sessions)


def sale(member, amount_ttc: int, base: int, vat: int, account: str = "706", vat_account: str = "445711"):
    lines = [("411", member.aux_code, amount_ttc)]
    lines += sorted([(vat_account, None, -vat), (account, None, -base)] if vat else [(account, None, -base)])
    return lines


def settlement(member, amount: int, fee: int):
    return [("5115", None, amount - fee), ("627", None, fee), ("411", member.aux_code, -amount)]


async def test_join_gives_access_and_books_the_sale_then_its_settlement(engine, sessions, member, catalogue, gw, fake):
    story = Story(fake, member, catalogue)
    inv, charge = story.bill(fee=295)
    await deliver(engine, story.evt("customer.subscription.created", story.sub), story.evt("invoice.finalized", inv),
                  story.evt("charge.succeeded", charge), story.evt("invoice.paid", inv))
    await drain(sessions, gw)

    assert await ledger(sessions) == [
        ("VT", inv["number"], [("411", member.aux_code, 18000), ("445711", None, -3000), ("706", None, -15000)]),
        ("ST", charge["id"], settlement(member, 18000, 295)),
    ]
    sub, emails = await state(sessions, member)
    assert (sub.status, sub.plan_id, sub.kind) == ("active", catalogue.plans["flex"].id, "workspace")
    assert access_of(sub).granted
    assert emails == [f"coworking:{sub.stripe_subscription_id}:welcome"]
    async with sessions() as session:
        row = await session.scalar(select(Invoice))
        entry = await session.scalar(select(Entry).where(Entry.journal_code == "VT"))
    assert (row.status, row.number, row.total, row.invoice_pdf) == ("paid", inv["number"], 18000, inv["invoice_pdf"])
    assert (entry.funding_source, entry.site_id, entry.label) == ("self", catalogue.plans["flex"].site_id,
                                                                  f"Facture {inv['number']} — Julie Fayolle")


async def test_the_settlement_never_comes_before_its_sale_whatever_the_order(engine, sessions, member, catalogue, gw, fake):
    story = Story(fake, member, catalogue)
    inv, charge = story.bill(fee=295)
    await deliver(engine, story.evt("charge.succeeded", charge))  # alone, before any invoice event
    await drain(sessions, gw)
    await deliver(engine, story.evt("invoice.paid", inv), story.evt("invoice.finalized", inv))
    await drain(sessions, gw)
    assert [(journal, ref) for journal, ref, _ in await ledger(sessions)] == [("VT", inv["number"]), ("ST", charge["id"])]


async def test_an_invoice_with_more_lines_than_one_page_is_sold_whole_before_its_charge_settles(
        engine, sessions, member, catalogue, gw, fake):
    """Stripe embeds one page of lines in an invoice (and in the charge's path to it): the sale
    is booked from every line, and before the settlement, even when the charge comes first."""
    story = Story(fake, member, catalogue)
    start, end = story.period()
    price = catalogue.price_id("flex")
    lines = [line(price_id=price, amount=9000, start=start, end=end, sub_id=story.sub["id"]) for _ in range(3)]
    inv, charge = story.bill(lines=lines, fee=295)
    fake.paginate_lines(inv, first_page=1)
    await deliver(engine, story.evt("charge.succeeded", charge))  # alone, before any invoice event
    await drain(sessions, gw)
    await deliver(engine, story.evt("invoice.paid", inv), story.evt("invoice.finalized", inv))
    await drain(sessions, gw)

    books = await ledger(sessions)
    assert [(journal, ref) for journal, ref, _ in books] == [("VT", inv["number"]), ("ST", charge["id"])]
    assert books[0][2] == [("411", member.aux_code, 27000), ("445711", None, -4500), ("706", None, -22500)]


async def test_a_renewal_books_a_second_sale_and_settlement(engine, sessions, member, catalogue, gw, fake):
    story = Story(fake, member, catalogue)
    first, ch1 = story.bill(fee=295)
    await deliver(engine, story.evt("customer.subscription.created", story.sub), story.evt("invoice.paid", first))
    await drain(sessions, gw)
    start, end = story.period(1)
    story.sub["items"]["data"][0].update(current_period_start=start, current_period_end=end)
    story.set()
    second, ch2 = story.bill(n=1, reason="subscription_cycle", fee=295)
    await deliver(engine, story.evt("customer.subscription.updated", story.sub), story.evt("invoice.finalized", second),
                  story.evt("invoice.paid", second))
    await drain(sessions, gw)
    posted = await ledger(sessions)
    assert [(j, ref) for j, ref, _ in posted] == [("VT", first["number"]), ("ST", ch1["id"]),
                                                  ("VT", second["number"]), ("ST", ch2["id"])]
    sub, emails = await state(sessions, member)
    assert sub.current_period_end == dt.datetime.fromtimestamp(end, dt.UTC).replace(tzinfo=None)
    assert access_of(sub).granted and len(emails) == 1  # no second welcome


async def test_a_failed_renewal_keeps_access_for_the_grace_period_then_recovers(engine, sessions, member, catalogue, gw, fake):
    story = Story(fake, member, catalogue)
    first, _ = story.bill()
    await deliver(engine, story.evt("customer.subscription.created", story.sub), story.evt("invoice.paid", first))
    await drain(sessions, gw)

    due, _ = story.bill(n=1, status="open", reason="subscription_cycle", attempts=1, next_attempt=now() + 3 * DAY)
    story.set(status="past_due")
    failed = story.evt("invoice.payment_failed", due)
    await deliver(engine, failed, story.evt("customer.subscription.updated", story.sub))
    await drain(sessions, gw)
    sub, emails = await state(sessions, member)
    assert sub.status == "past_due" and sub.past_due_since is not None
    assert emails[-1] == f"coworking:{due['id']}:failed:1"
    assert access_of(sub, now=utcnow()).granted and access_of(sub, now=utcnow()).reason == "grace"
    assert access_of(sub, now=utcnow() + dt.timedelta(days=8)).granted is False  # 7 days by default
    assert access_of(sub, now=utcnow() + dt.timedelta(days=8), grace_days=10).granted
    async with sessions() as session:
        row = await session.scalar(select(Invoice).where(Invoice.stripe_invoice_id == due["id"]))
        owed = row.amount_remaining
    assert owed == 18000
    # Accrual: the unpaid invoice is in the books at its date, and the member owes it on 411.
    books = await ledger(sessions)
    assert len(books) == 3 and books[-1][0] == "VT" and books[-1][2][0] == ("411", "M000001", 18000)

    # The same failure delivered again (Stripe retries the webhook): no second email.
    async with transaction(sessions) as session:
        await reset_event(session, failed["id"])
    await drain(sessions, gw)
    assert (await state(sessions, member))[1].count(f"coworking:{due['id']}:failed:1") == 1

    # The member updates the card; Stripe's retry goes through.
    due.update(status="paid", amount_paid=18000, amount_remaining=0, attempt_count=2)
    due["status_transitions"]["paid_at"] = now()
    _pi, charge, _txn = fake.paid_invoice(due, fee=295)
    story.set(status="active")
    await deliver(engine, story.evt("invoice.paid", due), story.evt("customer.subscription.updated", story.sub))
    await drain(sessions, gw)
    sub, emails = await state(sessions, member)
    assert sub.status == "active" and sub.past_due_since is None and access_of(sub).granted
    posted = await ledger(sessions)
    assert posted[-2:] == [("VT", due["number"], sale(member, 18000, 15000, 3000)),
                           ("ST", charge["id"], settlement(member, 18000, 295))]


async def test_failing_every_retry_ends_unpaid_without_access_and_emails_each_attempt(engine, sessions, member, catalogue,
                                                                                      gw, fake):
    story = Story(fake, member, catalogue)
    first, _ = story.bill()
    await deliver(engine, story.evt("customer.subscription.created", story.sub), story.evt("invoice.paid", first))
    await drain(sessions, gw)
    due, _ = story.bill(n=1, status="open", reason="subscription_cycle", attempts=0)
    for attempt in range(1, 5):
        due["attempt_count"] = attempt
        fake.add(due)
        snapshot_evt = story.evt("invoice.payment_failed", {**due, "lines": due["lines"]})
        if attempt == 1:
            story.set(status="past_due")
        if attempt == 4:
            story.set(status="unpaid")
        await deliver(engine, snapshot_evt, story.evt("customer.subscription.updated", story.sub))
        await drain(sessions, gw)
    sub, emails = await state(sessions, member)
    assert sub.status == "unpaid" and not access_of(sub).granted
    failures = [e for e in emails if ":failed:" in e]
    assert failures == [f"coworking:{due['id']}:failed:{n}" for n in range(1, 5)]
    assert f"coworking:{sub.stripe_subscription_id}:unpaid" in emails
    assert len(await ledger(sessions)) == 3  # the sale of the unpaid invoice, once, whatever the retries
    async with sessions() as session:
        assert (await member_access(session, member.id)).reason == "unpaid"


async def test_an_upgrade_books_the_prorations_split_per_line(engine, sessions, member, catalogue, gw, fake):
    story = Story(fake, member, catalogue)
    first, _ = story.bill()
    await deliver(engine, story.evt("customer.subscription.created", story.sub), story.evt("invoice.paid", first))
    await drain(sessions, gw)

    moment = story.start + 10 * DAY
    end = story.start + MONTH
    credit = -12000  # unused time on the nomad desk (TTC)
    charge_new = 17600  # remaining time on the fixed desk (TTC)
    lines = [line(price_id=catalogue.price_id("flex"), amount=credit, start=moment, end=end, sub_id=story.sub["id"],
                  proration=True, invoice_item="ii_1"),
             line(price_id=catalogue.price_id("fixe"), amount=charge_new, start=moment, end=end, sub_id=story.sub["id"],
                  proration=True, invoice_item="ii_2")]
    story.sub["items"]["data"][0]["price"] = catalogue.prices["fixe"]
    story.set()
    upgrade, ch = story.bill(reason="subscription_update", lines=lines, fee=100)
    await deliver(engine, story.evt("customer.subscription.updated", story.sub), story.evt("invoice.paid", upgrade))
    await drain(sessions, gw)
    sub, _ = await state(sessions, member)
    assert sub.plan_id == catalogue.plans["fixe"].id and sub.status == "active"
    # −120,00 TTC = −100,00 + −20,00 VAT; 176,00 TTC = 146,67 + 29,33 VAT; net 56,00 = 46,67 + 9,33.
    assert (await ledger(sessions))[-2:] == [
        ("VT", upgrade["number"], [("411", member.aux_code, 5600), ("445711", None, -933), ("706", None, -4667)]),
        ("ST", ch["id"], settlement(member, 5600, 100)),
    ]


async def test_cancel_at_period_end_keeps_access_until_stripe_ends_it(engine, sessions, member, catalogue, gw, fake):
    story = Story(fake, member, catalogue)
    first, _ = story.bill()
    await deliver(engine, story.evt("customer.subscription.created", story.sub), story.evt("invoice.paid", first))
    await drain(sessions, gw)
    story.set(cancel_at_period_end=True, cancel_at=story.start + MONTH, canceled_at=now())
    stale = story.evt("customer.subscription.updated", dict(story.sub))
    await deliver(engine, stale)
    await drain(sessions, gw)
    sub, _ = await state(sessions, member)
    assert sub.cancel_at_period_end and sub.status == "active" and access_of(sub).granted

    story.set(status="canceled", ended_at=story.start + MONTH)
    deleted = story.evt("customer.subscription.deleted", dict(story.sub))
    await deliver(engine, deleted)
    await drain(sessions, gw)
    sub, emails = await state(sessions, member)
    assert sub.status == "canceled" and not access_of(sub).granted and emails[-1].endswith(":ended")

    # An older "updated" arriving after the deletion (its payload says active) cannot revive it,
    # even when Stripe no longer has the object to fetch.
    fake.objects.pop(story.sub["id"])
    late = event("customer.subscription.updated", {**story.sub, "status": "active", "ended_at": None},
                 created=stale["created"] - 50)
    await deliver(engine, late)
    await drain(sessions, gw)
    sub, _ = await state(sessions, member)
    assert sub.status == "canceled"


async def test_a_subscription_row_only_moves_forwards(sessions, member, catalogue, fake):
    story = Story(fake, member, catalogue)
    async with transaction(sessions) as session:
        await apply_subscription(session, {**story.sub, "status": "past_due"}, 200)
        older = await apply_subscription(session, {**story.sub, "status": "active"}, 100)
    assert older.status == "past_due"
    async with transaction(sessions) as session:
        await apply_subscription(session, {**story.sub, "status": "canceled"}, 300)
        revived = await apply_subscription(session, {**story.sub, "status": "active"}, 400)
    assert revived.status == "canceled"  # final, even with a newer version


async def test_our_own_update_wins_over_a_fetch_made_before_it_in_the_same_second(sessions, member, catalogue, fake):
    # Chaotic delivery (issue 16): an event's handler fetched the subscription (cancel_at_period_end
    # false) just before the member cancelled; it applies after our call's answer was mirrored. The
    # event and the fetch are both of the same second as what we hold (Stripe's clock ahead of ours,
    # or one second for all three): the older fetch must not undo the cancellation.
    from funding.coworking.billing import _mirrored

    story = Story(fake, member, catalogue)
    ahead = now() + 10 * DAY  # the sandbox's clock, or a test clock, runs ahead of ours
    async with transaction(sessions) as session:
        await apply_subscription(session, {**story.sub, "status": "active", "cancel_at_period_end": False}, ahead)
    async with transaction(sessions) as session:
        await _mirrored(session, {**story.sub, "status": "active", "cancel_at_period_end": True})
    async with transaction(sessions) as session:  # the stale fetch: version max(event.created, fetched_at)
        stale = await apply_subscription(session, {**story.sub, "status": "active", "cancel_at_period_end": False}, ahead)
    assert stale.cancel_at_period_end
    async with transaction(sessions) as session:  # a later event still moves it on
        later = await apply_subscription(session, {**story.sub, "status": "past_due", "cancel_at_period_end": True}, ahead + 60)
    assert later.status == "past_due"


async def test_the_same_events_replayed_twice_and_in_reverse_order_change_nothing(engine, sessions, world, member, catalogue,
                                                                                  gw, fake):
    story = Story(fake, member, catalogue)
    first, _ = story.bill(fee=295)
    due, _ = story.bill(n=1, status="open", reason="subscription_cycle", attempts=1)
    events = [story.evt("customer.subscription.created", story.sub), story.evt("invoice.finalized", first),
              story.evt("invoice.paid", first), story.evt("invoice.payment_failed", due)]
    await deliver(engine, *events)
    await drain(sessions, gw)
    before = await snapshot(sessions, member)
    assert len(before[3]) == 3 and before[1][-1] == f"coworking:{due['id']}:failed:1"  # the open invoice is booked too

    for _ in range(2):  # every event processed again, as a replay from the back office would
        async with transaction(sessions) as session:
            for evt in events:
                await reset_event(session, evt["id"])
        await drain(sessions, gw)
        assert await snapshot(sessions, member) == before

    # Another member lives the same story with the events in reverse order.
    other = await new_member(sessions, world, name="Thomas Granet")
    story2 = Story(fake, other, catalogue)
    first2, _ = story2.bill(fee=295)
    due2, _ = story2.bill(n=1, status="open", reason="subscription_cycle", attempts=1)
    events2 = [story2.evt("customer.subscription.created", story2.sub), story2.evt("invoice.finalized", first2),
               story2.evt("invoice.paid", first2), story2.evt("invoice.payment_failed", due2)]
    for evt in reversed(events2):
        await deliver(engine, evt)
        await drain(sessions, gw)
    status2, emails2, invoices2, posted2 = await snapshot(sessions, other)
    assert status2 == before[0]
    assert sorted(e.split(":", 2)[-1] for e in emails2) == sorted(e.split(":", 2)[-1] for e in before[1])
    assert sorted((s, r, a) for _, s, r, a in invoices2) == sorted((s, r, a) for _, s, r, a in before[2])
    assert [(j, lines) for j, _, lines in posted2[-2:]] == [
        ("VT", sale(other, 18000, 15000, 3000)), ("ST", settlement(other, 18000, 295))]
    async with sessions() as session:
        assert set((await session.scalars(select(StripeEvent.status))).all()) == {"processed"}


async def test_payment_action_required_emails_the_hosted_invoice_link_once(engine, sessions, member, catalogue, gw, fake):
    story = Story(fake, member, catalogue)
    due, _ = story.bill(n=1, status="open", reason="subscription_cycle", attempts=1)
    await deliver(engine, story.evt("customer.subscription.created", story.sub),
                  story.evt("invoice.payment_action_required", due), story.evt("invoice.payment_action_required", due))
    await drain(sessions, gw)
    async with sessions() as session:
        emails = (await session.scalars(select(Email).where(Email.dedupe_key.like("%:action:%")))).all()
    assert len(emails) == 1 and due["hosted_invoice_url"] in emails[0].body_text


async def test_invoice_lines_booked_elsewhere_or_unknown_are_handled(engine, sessions, member, catalogue, gw, fake):
    """A bar tab billed on the invoice is already in the books (entrelab_booked); a line naming
    its account and VAT rate is booked there; anything else waits in suspense (467)."""
    story = Story(fake, member, catalogue)
    start, end = story.period(0)
    lines = [line(price_id=catalogue.price_id("flex"), amount=18000, start=start, end=end, sub_id=story.sub["id"]),
             line(price_id=None, amount=2350, start=start, end=start, invoice_item="ii_bar",
                  metadata={"entrelab_booked": "1", "purpose": "bar_tab"}, description="Note du bar"),
             line(price_id=None, amount=1100, start=start, end=start, invoice_item="ii_room",
                  metadata={"account": "706", "vat_rate": "100"}, description="Salle"),
             line(price_id=None, amount=500, start=start, end=start, invoice_item="ii_x", description="Divers")]
    inv, _ch = story.bill(lines=lines, fee=300)
    await deliver(engine, story.evt("invoice.paid", inv))
    await drain(sessions, gw)
    vt, st = await ledger(sessions)
    # 180,00 at 20 % + 11,00 at 10 % (10,00 + 1,00) + 5,00 unknown; the bar's 23,50 is collected, not sold again.
    assert vt[2] == [("411", member.aux_code, 19600), ("445711", None, -3000), ("445712", None, -100),
                     ("467", None, -500), ("706", None, -16000)]
    assert st[2] == settlement(member, 21950, 300)


async def test_a_zero_invoice_and_a_credit_invoice_balance_the_members_account(engine, sessions, member, catalogue, gw, fake):
    story = Story(fake, member, catalogue)
    start, end = story.period(0)
    downgrade = [line(price_id=catalogue.price_id("fixe"), amount=-17600, start=start, end=end, sub_id=story.sub["id"],
                      proration=True, invoice_item="ii_a"),
                 line(price_id=catalogue.price_id("flex"), amount=12000, start=start, end=end, sub_id=story.sub["id"],
                      proration=True, invoice_item="ii_b")]
    inv, ch = story.bill(lines=downgrade, reason="subscription_update")
    assert ch is None and inv["amount_due"] == 0
    await deliver(engine, story.evt("invoice.paid", inv))
    await drain(sessions, gw)
    (journal, _ref, lines), = await ledger(sessions)
    assert journal == "VT" and lines == [("411", member.aux_code, -5600), ("445711", None, 933), ("706", None, 4667)]


@pytest.mark.postgres_only
async def test_invoice_paid_processed_by_four_workers_at_once_books_once_on_postgresql(pg_url, fake):
    """Four workers drain the same inbox concurrently: one sale, one settlement, one email."""
    async with workers_on(pg_url, 4) as workers:
        engine, sessions, gws = workers.engine, workers.sessions, workers.gateways
        world = await make_world(sessions)
        cat = await make_catalogue(sessions, world, fake)
        member = await new_member(sessions, world)
        story = Story(fake, member, cat)
        inv, _ = story.bill(fee=295)
        await deliver(engine, story.evt("customer.subscription.created", story.sub), story.evt("invoice.paid", inv),
                      story.evt("invoice.payment_succeeded", inv))
        await asyncio.gather(*(drain(sessions, g) for g in gws))
        await drain(sessions, gws[0])
        assert [j for j, _, _ in await ledger(sessions)] == ["VT", "ST"]
        async with sessions() as session:
            assert await session.scalar(select(func.count(Email.id))) == 1


async def test_grace_period_starts_when_we_first_see_it_past_due(sessions, member, catalogue, fake):
    story = Story(fake, member, catalogue)
    async with transaction(sessions) as session:
        first = await apply_subscription(session, {**story.sub, "status": "past_due"}, now() - 3 * DAY)
        since = first.past_due_since
        again = await apply_subscription(session, {**story.sub, "status": "past_due"}, now())
    assert again.past_due_since == since  # still counting from the first time
    async with transaction(sessions) as session:
        await session.execute(update(Subscription).values(past_due_since=utcnow() - dt.timedelta(days=6, hours=23)))
    async with sessions() as session:
        assert (await member_access(session, member.id)).granted
        assert (await member_access(session, member.id, grace_days=6)).granted is False
