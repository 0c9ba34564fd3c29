"""The bar end to end: the live app, the sandbox's hosted Checkout page and webhooks, the books."""

from __future__ import annotations

import html
import re

import httpx
from sqlalchemy import func, select

from funding.auth.models import User
from funding.auth.service import issue_link
from funding.bar.closings import close_day
from funding.bar.models import Batch, Ticket
from funding.bar.settlement import bill, cut_off
from funding.db import transaction
from funding.ledger.models import Entry, Posting
from funding.orgs.models import Site
from funding.stripe_gateway import StripeGateway
from tests.support.bar import make_bar, sell
from tests.support.e2e import db_call, pay_on_hosted_page, wait_for
from tests.support.web import csrf_of
from tests.support.world import make_world


def logged_in(e2e, user_id: int) -> httpx.Client:
    async def link(sessions):
        async with transaction(sessions) as session:
            return await issue_link(session, await session.get(User, user_id), e2e.settings)

    client = httpx.Client(base_url=e2e.url, follow_redirects=False, timeout=30)
    url = db_call(e2e.settings, link)
    page = client.get(url)
    assert client.post(url, data={"csrf_token": csrf_of(page.text)}).status_code == 303
    return client


async def coworker_with_card(sessions, gw, world, user_id: int):
    """The coworking member of a bar regular, their Stripe customer and a saved card."""
    from funding.coworking.members import Details, enrol
    from funding.coworking.service import ensure_customer

    async with transaction(sessions) as session:
        user = await session.get(User, user_id)
        member, _ = await enrol(session, await session.get(Site, world.site_id), Details(name=user.name, email=user.email))
    customer = await ensure_customer(sessions, gw, member.id)
    card = await gw.call("payment_methods", "attach", "pm_card_visa", params={"customer": customer})
    return member, customer, card["id"]


async def receivable_by_journal(session, aux_code: str) -> list[tuple[str, int]]:
    """The member's 411 auxiliary account, summed per journal."""
    return (await session.execute(
        select(Entry.journal_code, func.sum(Posting.amount)).join(Entry, Entry.id == Posting.entry_id)
        .where(Posting.account_number == "411", Posting.aux_code == aux_code)
        .group_by(Entry.journal_code).order_by(Entry.journal_code))).all()


def test_a_walk_in_pays_by_scanning_the_till_s_qr_code_and_the_sale_is_booked_per_vat_rate(e2e):
    async def setup(sessions):
        world = await make_world(sessions)
        return world, await make_bar(sessions, world)

    world, bar = db_call(e2e.settings, setup)
    till = f"/bar/{world.site_slug}"
    client = logged_in(e2e, world.users["staff"])
    try:
        token = csrf_of(client.get(f"{till}/caisse").text)
        opened = client.post(f"{till}/comptoir", data={"csrf_token": token})
        ticket_id = int(opened.headers["location"].rsplit("=", 1)[1])
        for product in ("Bière locale", "Sandwich"):
            sold = client.post(f"{till}/caisse/vente", data={"csrf_token": token, "product_id": bar.products[product],
                                                            "ticket_id": ticket_id})
            assert sold.status_code == 303
        charged = client.post(f"{till}/comptoir/{ticket_id}/encaisser", data={"csrf_token": token})
        assert charged.headers["location"] == f"{till}/comptoir/{ticket_id}"
        qr_page = client.get(charged.headers["location"])
        assert qr_page.status_code == 200 and "<svg" in qr_page.text and "10,00" in qr_page.text
        checkout_url = html.unescape(re.search(r'<figcaption><a href="([^"]+)"', qr_page.text).group(1))
        assert "/_sandbox/stripe/checkout/cs_" in checkout_url
        # The customer scans the code and pays on their phone.
        with httpx.Client(follow_redirects=False, timeout=30) as phone:
            paid = pay_on_hosted_page(phone, checkout_url, "4242 4242 4242 4242", name="Client de passage")
            assert paid.status_code in (302, 303)
        assert "Payé. Merci" in client.get(f"{till}/comptoir/{ticket_id}").text
    finally:
        client.close()

    async def booked(sessions):
        async with sessions() as session:
            ticket = await session.get(Ticket, ticket_id)
            rows = (await session.execute(
                select(Posting.account_number, Posting.amount).join(Entry, Entry.id == Posting.entry_id)
                .where(Entry.journal_code == "ST", Entry.site_id == world.site_id).order_by(Posting.line_no))).all()
            return (ticket.status, rows) if rows else None

    status, rows = wait_for(lambda: db_call(e2e.settings, booked), what="the walk-in sale's entry")
    assert status == "paid"
    # 4,50 € at 20 % and 5,50 € at 10 %; the sandbox's fee is round(1,5 %) + 0,25 € = 0,40 €.
    assert rows == [("5115", 960), ("627", 40), ("707", -375), ("445711", -75), ("707", -500), ("445712", -50)]


def test_a_member_s_tab_is_closed_cut_off_and_charged_off_session_on_the_saved_card(e2e):
    async def setup(sessions):
        world = await make_world(sessions)
        bar = await make_bar(sessions, world)
        gw = StripeGateway(e2e.settings)
        try:
            member, customer, card = await coworker_with_card(sessions, gw, world, bar.members[0])
            await gw.call("customers", "update", customer, params={"invoice_settings": {"default_payment_method": card}})
            for product in ("Café", "Thé", "Sandwich"):
                await sell(sessions, bar, product)
            async with transaction(sessions) as session:
                await close_day(session, await session.get(Site, world.site_id), closed_by="e2e")
            [batch_id] = await cut_off(sessions, key="2026-11", site_ids=[world.site_id])
            status = await bill(sessions, gw, batch_id)
        finally:
            await gw.aclose()
        return world, member, batch_id, status

    _world, member, batch_id, status = db_call(e2e.settings, setup)
    assert status == "paid"

    async def settled(sessions):
        async with sessions() as session:
            batch = await session.get(Batch, batch_id)
            rows = await receivable_by_journal(session, member.aux_code)
            return (batch, rows) if len(rows) == 2 else None

    batch, rows = wait_for(lambda: db_call(e2e.settings, settled), what="the settlement's entry")
    assert rows == [("CA", 900), ("ST", -900)]  # the member's 411 account is back to zero
    assert batch.status == "paid" and batch.method == "payment_intent" and batch.stripe_payment_intent_id.startswith("pi_")


def test_a_subscriber_s_tab_rides_on_the_next_subscription_invoice_and_is_paid_with_it(e2e):
    from funding.coworking.models import Subscription

    async def setup(sessions):
        world = await make_world(sessions)
        bar = await make_bar(sessions, world)
        gw = StripeGateway(e2e.settings)
        try:
            member, customer, card = await coworker_with_card(sessions, gw, world, bar.members[0])
            price = await gw.create("prices", {"currency": "eur", "unit_amount": 15000, "recurring": {"interval": "month"},
                                               "product_data": {"name": "Poste nomade"}}, key=f"e2e-price-{member.id}")
            await gw.create("subscriptions", {"customer": customer, "items": [{"price": price["id"]}],
                                              "default_payment_method": card,
                                              "metadata": {"member_id": str(member.id), "site_id": str(world.site_id)}},
                            key=f"e2e-sub-{member.id}")
        finally:
            await gw.aclose()
        return world, bar, member

    world, bar, member = db_call(e2e.settings, setup)

    async def subscribed(sessions):
        async with sessions() as session:
            return await session.scalar(select(Subscription.status).where(Subscription.member_id == member.id)) == "active"

    wait_for(lambda: db_call(e2e.settings, subscribed), what="the subscription mirrored from its webhook")

    async def tab_then_bill(sessions):
        for product in ("Bière locale", "Sandwich"):
            await sell(sessions, bar, product)
        async with transaction(sessions) as session:
            await close_day(session, await session.get(Site, world.site_id), closed_by="e2e")
        [batch_id] = await cut_off(sessions, key="2026-11", site_ids=[world.site_id])
        gw = StripeGateway(e2e.settings)
        try:
            return batch_id, await bill(sessions, gw, batch_id)
        finally:
            await gw.aclose()

    batch_id, status = db_call(e2e.settings, tab_then_bill)
    assert status == "billed"
    httpx.post(f"{e2e.url}/_sandbox/stripe/_admin/advance", data={"seconds": str(32 * 86400)}, timeout=30)

    async def paid(sessions):
        async with sessions() as session:
            batch = await session.get(Batch, batch_id)
            if batch.status != "paid":
                return None
            rows = await receivable_by_journal(session, member.aux_code)
            return (batch, rows) if len(rows) == 3 else None

    batch, rows = wait_for(lambda: db_call(e2e.settings, paid), timeout=30, what="the invoice paid with the tab on it")
    assert batch.stripe_invoice_id.startswith("in_") and batch.stripe_invoice_item_id.startswith("ii_")
    # [CA] the tab · [VT] the two invoices (the first one, then the renewal without the tab's line, already
    # booked) · [ST] both invoices paid in full, the renewal with the tab: the member's account is back to zero.
    assert rows == [("CA", 1000), ("ST", -31000), ("VT", 30000)]


def test_cancelling_a_walk_in_sale_expires_its_checkout_page_first(e2e):
    from funding.payments.models import Payment

    async def setup(sessions):
        world = await make_world(sessions)
        return world, await make_bar(sessions, world)

    world, bar = db_call(e2e.settings, setup)
    till = f"/bar/{world.site_slug}"
    client = logged_in(e2e, world.users["staff"])
    try:
        token = csrf_of(client.get(f"{till}/caisse").text)
        ticket_id = int(client.post(f"{till}/comptoir", data={"csrf_token": token}).headers["location"].rsplit("=", 1)[1])
        client.post(f"{till}/caisse/vente", data={"csrf_token": token, "product_id": bar.products["Café"],
                                                 "ticket_id": ticket_id})
        client.post(f"{till}/comptoir/{ticket_id}/encaisser", data={"csrf_token": token})
        checkout_url = html.unescape(re.search(r'<figcaption><a href="([^"]+)"',
                                               client.get(f"{till}/comptoir/{ticket_id}").text).group(1))
        canceled = client.post(f"{till}/comptoir/{ticket_id}/annuler", data={"csrf_token": token,
                                                                             "reason": "Le client est parti"})
        assert canceled.headers["location"] == f"{till}/caisse"
        with httpx.Client(follow_redirects=False, timeout=30) as phone:
            late = phone.get(checkout_url)
            assert late.status_code != 200 or "expir" in late.text.lower()
    finally:
        client.close()

    async def state(sessions):
        async with sessions() as session:
            ticket = await session.get(Ticket, ticket_id)
            payment = await session.get(Payment, ticket.payment_id)
            return ticket.status, payment.status

    assert db_call(e2e.settings, state) == ("canceled", "expired")
