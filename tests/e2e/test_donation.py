"""A donation through the sandbox's hosted page and its webhook, into the books."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from funding.ledger.models import Entry, Posting
from funding.payments.models import Payment
from tests.support.e2e import db_call, donate, pay_on_hosted_page, sandbox_get, wait_for
from tests.support.web import csrf_of
from tests.support.world import make_world


def test_a_donation_paid_on_the_hosted_page_lands_in_the_books_with_the_sandbox_fee(e2e):
    world = db_call(e2e.settings, make_world)
    with httpx.Client(base_url=e2e.url, follow_redirects=False, timeout=20) as client:
        checkout_url = donate(client, world)
        assert checkout_url.startswith(f"{e2e.url}/_sandbox/stripe/checkout/cs_")
        paid = pay_on_hosted_page(client, checkout_url, "4242 4242 4242 4242", email=None)
        assert paid.status_code in (302, 303)
        thanks = client.get(paid.headers["location"])
        assert thanks.status_code == 200 and "Merci !" in thanks.text and "50,00" in thanks.text

    async def booked(sessions):
        async with sessions() as session:
            entry = await session.scalar(select(Entry).where(Entry.source_key.like("stripe:txn_%")))
            if entry is None:
                return None
            postings = (await session.scalars(select(Posting).where(Posting.entry_id == entry.id).order_by(Posting.line_no))).all()
            payment = await session.scalar(select(Payment))
            return entry, [(p.account_number, p.amount) for p in postings], payment

    entry, lines, payment = wait_for(lambda: db_call(e2e.settings, booked), what="the donation's ledger entry")
    txn = sandbox_get(e2e, f"/v1/balance_transactions/{entry.source_key.removeprefix('stripe:')}")
    assert txn["fee"] == 100 and txn["net"] == 4900  # 1,5 % of 50 € + 0,25 €, computed by the sandbox
    assert lines == [("5115", txn["net"]), ("627", txn["fee"]), ("75411", -5000)]
    assert entry.funding_source == "crowdfunding" and entry.site_id == world.site_id
    assert payment.status == "paid"

    # The webhook deliveries (several events for one payment) end in a single entry.
    def all_delivered():
        rows = sandbox_get(e2e, "/_admin/events")["data"]
        return rows and all((e.get("sandbox_delivery") or {}).get("delivered_at") for e in rows)

    wait_for(all_delivered, what="every webhook delivered")

    async def count(sessions):
        async with sessions() as session:
            return len((await session.scalars(select(Entry.id).where(Entry.source_key.like("stripe:%")))).all())

    assert db_call(e2e.settings, count) == 1


def test_a_declined_card_is_refused_on_the_page_and_books_nothing(e2e):
    world = db_call(e2e.settings, make_world)
    with httpx.Client(base_url=e2e.url, follow_redirects=False, timeout=20) as client:
        checkout_url = donate(client, world, amount="", other="35", name="Léo", email="leo@example.org")
        declined = pay_on_hosted_page(client, checkout_url, "4000 0000 0000 9995", email=None)
        assert declined.status_code in (200, 402) and "refusée" in declined.text.lower()

    async def state(sessions):
        async with sessions() as session:
            return (await session.scalar(select(Payment.status)),
                    (await session.scalars(select(Entry.id).where(Entry.source_key.like("stripe:%")))).all())

    status, entries = db_call(e2e.settings, state)
    assert status == "open" and entries == []


def test_bad_donation_input_is_refused_and_creates_nothing(e2e):
    world = db_call(e2e.settings, make_world)
    with httpx.Client(base_url=e2e.url, timeout=20) as client:
        token = csrf_of(client.get("/soutenir").text)
        for data, message in [
            ({"site": "nowhere", "amount": "20", "name": "A", "email": "a@example.org"}, "Choisissez un lieu"),
            ({"site": world.site_slug, "other": "0,50", "name": "A", "email": "a@example.org"}, "compris entre"),
            ({"site": world.site_slug, "other": "20 000", "name": "A", "email": "a@example.org"}, "compris entre"),
            ({"site": world.site_slug, "other": "vingt", "name": "A", "email": "a@example.org"}, "montant invalide"),
            ({"site": world.site_slug, "amount": "20", "name": "", "email": "a@example.org"}, "Indiquez votre nom"),
            ({"site": world.site_slug, "amount": "20", "name": "A", "email": "pas-un-email"}, "e-mail invalide"),
            ({"site": world.site_slug, "amount": "20", "name": "A", "email": "mallory@example.org,eve"}, "une seule adresse"),
        ]:
            response = client.post("/soutenir", data={"csrf_token": token, "amount": "", "other": "", **data})
            assert response.status_code == 400 and message in response.text, (data, response.text[:300])

    async def payments(sessions):
        async with sessions() as session:
            return (await session.scalars(select(Payment.id))).all()

    assert db_call(e2e.settings, payments) == []
