"""Recurring gifts end to end: the form on /soutenir, and what the database holds of a gift."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

import httpx
from sqlalchemy import select

from funding.donations.models import RecurringGift, RecurringGiftPayment
from funding.ledger.models import Entry, Posting
from funding.mail.models import Email
from funding.stripe_gateway import SANDBOX_PATH
from tests.support.e2e import DONOR_ADDRESS, db_call, pay_on_hosted_page, wait_for
from tests.support.web import csrf_of


def give_recurring(client: httpx.Client, world, *, frequency: str = "month", amount: str = "", other: str = "20",
                   name: str = "Ana Martin", email: str = "ana@example.org", **address: str) -> httpx.Response:
    """Post the donation form for a recurring gift on the world's central site."""
    form = client.get("/soutenir")
    return client.post("/soutenir", data={"csrf_token": csrf_of(form.text), "site": world.site_slug, "amount": amount,
                                          "other": other, "frequency": frequency, "name": name, "email": email,
                                          **DONOR_ADDRESS, **address})


def subscribe(e2e, world, card: str = "4242 4242 4242 4242", **kw) -> httpx.Response:
    """The form, then the sandbox's hosted Checkout page paid by ``card``; the thanks page."""
    with httpx.Client(base_url=e2e.url, follow_redirects=False, timeout=30) as client:
        response = give_recurring(client, world, **kw)
        assert response.status_code == 303, response.text[:500]
        paid = pay_on_hosted_page(client, response.headers["location"], card, email=None)
        assert paid.status_code in (302, 303), paid.text[:500]
        return client.get(paid.headers["location"])


SEPA_SUCCEEDS, SEPA_FAILS, SEPA_DISPUTED = "FR1420041010050500013M02606", "FR8420041010050500013M02607", "FR7920041010050500013M02600"


def subscribe_sepa(e2e, world, iban: str = SEPA_SUCCEEDS, *, holder: str = "Ana Martin", **kw) -> httpx.Response:
    """The form, then the sandbox's hosted Checkout page paid by SEPA Direct Debit (its mandate
    accepted there); the thanks page, while the first debit is processing."""
    from stripe_sandbox.visitor import form_action

    with httpx.Client(base_url=e2e.url, follow_redirects=False, timeout=30) as client:
        response = give_recurring(client, world, **kw)
        assert response.status_code == 303, response.text[:500]
        page = client.get(response.headers["location"])
        assert page.status_code == 200 and 'id="pay-sepa"' in page.text, page.text[:300]
        paid = client.post(form_action(page.text), data={"method": "sepa_debit", "iban": iban, "account-holder-name": holder})
        assert paid.status_code in (302, 303), paid.text[:500]
        return client.get(paid.headers["location"])


def arm_sepa_failure(e2e, failure_code: str) -> None:
    """The sandbox's next SEPA settlement fails late, with this reason."""
    response = httpx.post(f"{e2e.url}{SANDBOX_PATH}/_admin/sepa/fail", data={"failure_code": failure_code}, timeout=10)
    assert response.status_code == 200, response.text


def gift_emails(e2e, like: str) -> list[tuple[str, str, str]]:
    """The emails whose dedupe key matches ``like`` (SQL LIKE): (dedupe key, subject, body)."""
    async def go(sessions):
        async with sessions() as session:
            return [tuple(row) for row in (await session.execute(
                select(Email.dedupe_key, Email.subject, Email.body_text).where(Email.dedupe_key.like(like))
                .order_by(Email.id))).all()]

    return db_call(e2e.settings, go)


@dataclass
class GiftFacts:
    gift: RecurringGift | None
    instalments: list[RecurringGiftPayment]
    entries: list[tuple[str, str, list[tuple[str, int]]]]  # gifts' entries: (piece, source key, [(account, amount)])
    emails: list[str]


def gift_facts(e2e) -> GiftFacts:
    async def go(sessions):
        async with sessions() as session:
            gift = await session.scalar(select(RecurringGift).order_by(RecurringGift.id.desc()).limit(1))
            instalments = list((await session.scalars(select(RecurringGiftPayment).order_by(RecurringGiftPayment.id))).all())
            entries = []
            for entry in (await session.scalars(select(Entry).where(Entry.source_key.like("stripe:txn_%"))
                                                .order_by(Entry.number))).all():
                postings = (await session.scalars(select(Posting).where(Posting.entry_id == entry.id)
                                                  .order_by(Posting.line_no))).all()
                if any(p.account_number == "75411" for p in postings):  # the gifts' entries (payouts aside)
                    entries.append((entry.piece_ref, entry.source_key, [(p.account_number, p.amount) for p in postings]))
            emails = list((await session.scalars(select(Email.dedupe_key).where(Email.dedupe_key.like("recurring-gift:%"))
                                                 .order_by(Email.id))).all())
        return GiftFacts(gift, instalments, entries, emails)

    return db_call(e2e.settings, go)


def instalments_booked(e2e, count: int) -> GiftFacts:
    """Wait until ``count`` instalments are paid and each has its entry."""
    def ready():
        facts = gift_facts(e2e)
        return facts if len(facts.instalments) >= count and len(facts.entries) >= count else None

    return wait_for(ready, timeout=40, what=f"{count} instalment(s) booked")


@contextlib.contextmanager
def donor_client(e2e, email: str):
    """A browser session of the donor, logged in by the link /login emails to their address."""
    with httpx.Client(base_url=e2e.url, follow_redirects=False, timeout=30) as client:
        page = client.get("/login")
        assert client.post("/login", data={"csrf_token": csrf_of(page.text), "email": email}).status_code == 200

        async def link(sessions):
            async with sessions() as session:
                return await session.scalar(select(Email.body_text).where(Email.to_addr == email, Email.dedupe_key.like("login:%"))
                                            .order_by(Email.id.desc()).limit(1))

        body = wait_for(lambda: db_call(e2e.settings, link), what="the login email")
        path = re.search(r"https?://[^/\s]+(/login/\S+)", body).group(1)
        confirm = client.get(path)
        assert client.post(path, data={"csrf_token": csrf_of(confirm.text)}).status_code in (302, 303)
        yield client


def change_gift_card(e2e, client: httpx.Client, gift_id: int, card: str) -> None:
    """From the backer space to the Billing Portal of the gift's customer, and a new card there."""
    space = client.get("/mes-contributions")
    portal = client.post(f"/mes-contributions/dons-reguliers/{gift_id}/carte", data={"csrf_token": csrf_of(space.text)})
    assert portal.status_code == 303 and f"{SANDBOX_PATH}/portal/" in portal.headers["location"], portal.text[:300]
    saved = client.post(portal.headers["location"].split("?")[0],
                        data={"action": "update-card", "cardholder-name": "Donatrice", "card-number": card,
                              "card-expiry": "12/34", "card-cvc": "123"})
    assert saved.status_code == 200 and "Votre carte est enregistrée" in saved.text


# --- unit tests' gifts (respx Stripe) ------------------------------------------------------


async def start_gift(sessions, gw, world, amount: int = 2000, interval: str = "month", email: str = "ana@example.org"):
    """A recurring gift recorded and its Checkout opened (the fake Stripe answers)."""
    from funding.donations import recurring
    from funding.orgs.models import Site

    async with sessions() as session:
        site = await session.get(Site, world.site_id)
    gift, _url = await recurring.start_recurring(
        sessions, gw, site=site, amount=amount, interval=interval, email=email, name="Ana Martin",
        donor={"donor_address": "3 rue Durolle\n63300 Thiers\nFrance"},
        success_url="http://testserver/soutenir/regulier/merci?session_id={CHECKOUT_SESSION_ID}",
        cancel_url="http://testserver/soutenir?annule=1")
    return gift


def gift_subscription(fake, gift, status: str = "active") -> dict:
    """The gift's subscription at the fake Stripe (its price the gift's amount)."""
    from funding.donations import recurring
    from tests.support.coworking import price, subscription
    from tests.support.stripe_objects import sid

    gift_price = price(price_id=sid("price"), amount=gift.amount)
    sub = subscription(customer=sid("cus"), price=gift_price, status=status, metadata=recurring.gift_metadata(gift))
    fake.add(gift_price, sub)
    return sub


def gift_action(client: httpx.Client, gift_id: int, action: str, **data: str) -> httpx.Response:
    """A POST of the backer space's form for one recurring gift (``montant``, ``sauter``, ``arreter``)."""
    space = client.get("/mes-contributions")
    return client.post(f"/mes-contributions/dons-reguliers/{gift_id}/{action}", data={"csrf_token": csrf_of(space.text), **data})


def gift_changes(e2e) -> list:
    """The donor's requested changes, oldest first."""
    from funding.donations.models import RecurringGiftChange

    async def go(sessions):
        async with sessions() as session:
            return list((await session.scalars(select(RecurringGiftChange).order_by(RecurringGiftChange.id))).all())

    return db_call(e2e.settings, go)


def change_emails(e2e) -> list[tuple[str, str, str]]:
    """The emails confirming the donor's changes: (dedupe key, subject, body)."""
    async def go(sessions):
        async with sessions() as session:
            return [tuple(row) for row in (await session.execute(
                select(Email.dedupe_key, Email.subject, Email.body_text).where(Email.dedupe_key.like("recurring-gift-change:%"))
                .order_by(Email.id))).all()]

    return db_call(e2e.settings, go)
