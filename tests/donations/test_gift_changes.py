"""The donor changes a recurring gift from the backer space, against a respx Stripe: a new amount
(a Price of that amount, the subscription's item moved to it without proration) or the next
instalment skipped (pause_collection, behavior void, resuming just after that billing date).
Each change is a row first, whose id keys the update; the gift changes only when Stripe
confirms (its answer, or the subscription fetched after an event); bad input changes nothing."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from sqlalchemy import func, select

from funding.db import transaction
from funding.donations import recurring
from funding.donations.models import GiftChangeStatus, GiftStatus, RecurringGift, RecurringGiftChange, RecurringGiftPayment
from funding.mail.models import Email
from funding.payments.models import StripeRequest
from funding.stripe_gateway import StripeUnknown
from tests.support.coworking import invoice, line
from tests.support.gifts import gift_subscription, start_gift
from tests.support.stripe_objects import event, now
from tests.support.webhooks import deliver, entries
from webhooks.processing import drain

DAY = 86_400


def _naive(unix: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(unix, dt.UTC).replace(tzinfo=None)


async def _active_gift(sessions, gw, fake, **kw):
    gift = await start_gift(sessions, gw, world=kw.pop("world"), **kw)
    sub = gift_subscription(fake, gift)
    async with transaction(sessions) as session:
        await recurring.apply_subscription(session, sub, now())
    return gift, sub


async def _state(sessions, gift_id):
    async with sessions() as session:
        gift = await session.get(RecurringGift, gift_id)
        changes = (await session.scalars(select(RecurringGiftChange).order_by(RecurringGiftChange.id))).all()
        emails = (await session.scalars(select(Email).where(Email.dedupe_key.like("recurring-gift-change:%"))
                                        .order_by(Email.id))).all()
    return gift, list(changes), list(emails)


def _answers_lost(fake) -> None:
    """Stripe does the subscription update, but its answers never reach us."""
    route = next(r for r in fake.router.routes if r.side_effect == fake._post)

    def lost(request: httpx.Request, path: str) -> httpx.Response:
        response = fake._post(request, path)
        if path.startswith("subscriptions/"):
            raise httpx.ConnectError("connection reset", request=request)
        return response

    route.side_effect = lost


async def test_a_new_amount_moves_the_item_to_its_price_without_proration_keyed_by_the_change(sessions, world, gw, fake_stripe):
    gift, sub = await _active_gift(sessions, gw, fake_stripe, world=world)
    before = len(fake_stripe.posts)
    changed = await recurring.change_amount(sessions, gw, gift_id=gift.id, email="ana@example.org", amount=3500)
    assert changed.amount == 3500
    gift, [change], [mail] = await _state(sessions, gift.id)
    org = world.org_id
    assert [(path, key) for path, _params, key in fake_stripe.posts[before:]] == [
        ("prices", f"entrelab-recurring-gift-price-{org}-month-eur-3500-prices-1"),  # once per amount, as at creation
        (f"subscriptions/{sub['id']}", f"entrelab-recurring-gift-change-{change.id}-subscriptions-1"),
    ]
    _path, params, _key = fake_stripe.posts[-1]
    new_price = fake_stripe.posted("prices")[-1]
    assert params == {"items": [{"id": sub["items"]["data"][0]["id"], "price": fake_stripe.objects[sub["id"]]["items"]["data"][0]["price"]["id"]}],
                      "proration_behavior": "none"}
    assert new_price[1]["unit_amount"] == "3500"
    assert gift.amount == 3500 and gift.status == GiftStatus.ACTIVE
    assert (change.kind, change.amount, change.previous_amount, change.status) == ("amount", 3500, 2000, GiftChangeStatus.APPLIED)
    assert change.instalment_at == _naive(sub["items"]["data"][0]["current_period_end"])
    assert mail.dedupe_key == f"recurring-gift-change:{change.id}" and mail.to_addr == "ana@example.org"
    assert "35,00" in mail.body_text and "20,00" in mail.body_text and "prochain versement" in mail.body_text
    assert await entries(sessions) == []  # nothing booked until an instalment is paid

    # The subscription's event, late and twice: nothing more (one email per change).
    async with transaction(sessions) as session:
        await recurring.apply_subscription(session, fake_stripe.objects[sub["id"]], now() + 10)
        await recurring.apply_subscription(session, fake_stripe.objects[sub["id"]], now() + 11)
    _gift, _changes, emails = await _state(sessions, gift.id)
    assert len(emails) == 1


async def test_the_new_amount_is_recorded_only_once_stripe_confirms_it(engine, sessions, world, gw, fake_stripe):
    gift, sub = await _active_gift(sessions, gw, fake_stripe, world=world)
    _answers_lost(fake_stripe)
    with pytest.raises(StripeUnknown):
        await recurring.change_amount(sessions, gw, gift_id=gift.id, email="ana@example.org", amount=3500)
    row, [change], emails = await _state(sessions, gift.id)
    assert row.amount == 2000 and change.status == GiftChangeStatus.UNKNOWN and emails == []
    keys = {key for path, _p, key in fake_stripe.posts if path.startswith("subscriptions/")}
    assert keys == {f"entrelab-recurring-gift-change-{change.id}-subscriptions-1"}  # every retry under the same key

    # Stripe did it: its event (the subscription fetched) settles the change.
    await deliver(engine, event("customer.subscription.updated", fake_stripe.objects[sub["id"]]))
    await drain(sessions, gw)
    row, [change], [mail] = await _state(sessions, gift.id)
    assert row.amount == 3500 and change.status == GiftChangeStatus.APPLIED and "35,00" in mail.body_text


@pytest.mark.parametrize(("amount", "interval", "email", "error"), [
    (499, "month", "ana@example.org", recurring.GiftError),        # below 5 € a month
    (1999, "year", "ana@example.org", recurring.GiftError),        # below 20 € a year
    (1_000_001, "month", "ana@example.org", recurring.GiftError),  # above the ceiling
    (2000, "month", "ana@example.org", recurring.GiftError),       # what it already is
    (3000, "month", "mallory@example.org", LookupError),           # someone else's gift
])
async def test_bad_amounts_change_nothing_at_stripe_or_here(sessions, world, gw, fake_stripe, amount, interval, email, error):
    gift, _sub = await _active_gift(sessions, gw, fake_stripe, world=world, amount=2000 if interval == "month" else 5000,
                                    interval=interval)
    before, requests_before = len(fake_stripe.posts), await _requests(sessions)
    with pytest.raises(error):
        await recurring.change_amount(sessions, gw, gift_id=gift.id, email=email, amount=amount)
    assert fake_stripe.posts[before:] == []
    row, changes, emails = await _state(sessions, gift.id)
    assert row.amount == gift.amount and changes == [] and emails == [] and await _requests(sessions) == requests_before


async def test_a_stopped_gift_is_neither_changed_nor_skipped(sessions, world, gw, fake_stripe):
    gift, sub = await _active_gift(sessions, gw, fake_stripe, world=world)
    async with transaction(sessions) as session:
        await recurring.apply_subscription(session, {**sub, "status": "canceled"}, now() + 5)
    before = len(fake_stripe.posts)
    with pytest.raises(recurring.GiftError, match="arrêté"):
        await recurring.change_amount(sessions, gw, gift_id=gift.id, email="ana@example.org", amount=3000)
    with pytest.raises(recurring.GiftError, match="arrêté"):
        await recurring.skip_next(sessions, gw, gift_id=gift.id, email="ana@example.org")
    assert fake_stripe.posts[before:] == []
    _row, changes, _emails = await _state(sessions, gift.id)
    assert changes == []


async def _requests(sessions) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count(StripeRequest.id))) or 0)


async def test_skipping_the_next_instalment_pauses_collection_until_just_after_it(engine, sessions, world, gw, fake_stripe):
    gift, sub = await _active_gift(sessions, gw, fake_stripe, world=world)
    billing = sub["items"]["data"][0]["current_period_end"]
    before = len(fake_stripe.posts)
    skipped = await recurring.skip_next(sessions, gw, gift_id=gift.id, email="ana@example.org")
    row, [change], [mail] = await _state(sessions, gift.id)
    [(path, params, key)] = fake_stripe.posts[before:]
    assert path == f"subscriptions/{sub['id']}" and key == f"entrelab-recurring-gift-change-{change.id}-subscriptions-1"
    assert params == {"pause_collection": {"behavior": "void", "resumes_at": str(billing + DAY)}}
    assert skipped.collection_resumes_at == _naive(billing + DAY) and row.skipped_instalment_at == _naive(billing)
    assert (change.kind, change.instalment_at, change.status) == ("skip", _naive(billing), GiftChangeStatus.APPLIED)
    assert row.amount == 2000 and row.status == GiftStatus.ACTIVE
    assert mail.dedupe_key == f"recurring-gift-change:{change.id}" and "ne sera pas prélevé" in mail.body_text

    with pytest.raises(recurring.GiftError, match="déjà sauté"):  # once is enough: nothing asked of Stripe
        await recurring.skip_next(sessions, gw, gift_id=gift.id, email="ana@example.org")
    assert len(fake_stripe.posts) == before + 1

    # The skipped instalment's invoice, voided by Stripe: no instalment, nothing booked.
    start = billing
    voided = invoice(customer=sub["customer"], sub=sub, status="void",
                     lines=[line(price_id=sub["items"]["data"][0]["price"]["id"], amount=2000, start=start,
                                 end=start + 30 * DAY, sub_id=sub["id"])])
    fake_stripe.add(voided)
    await deliver(engine, event("invoice.voided", voided), event("invoice.updated", voided))
    # Then collection resumes by itself at resumes_at (Stripe unsets pause_collection): a later event.
    fake_stripe.add({**fake_stripe.objects[sub["id"]], "pause_collection": None})
    await deliver(engine, event("customer.subscription.updated", fake_stripe.objects[sub["id"]], created=billing + DAY))
    await drain(sessions, gw)
    row, _changes, emails = await _state(sessions, gift.id)
    assert row.collection_resumes_at is None and row.status == GiftStatus.ACTIVE and len(emails) == 1
    assert await entries(sessions) == []
    async with sessions() as session:
        assert await session.scalar(select(func.count(RecurringGiftPayment.id))) == 0


async def test_someone_else_cannot_skip_a_gift(sessions, world, gw, fake_stripe):
    gift, _sub = await _active_gift(sessions, gw, fake_stripe, world=world)
    before = len(fake_stripe.posts)
    with pytest.raises(LookupError):
        await recurring.skip_next(sessions, gw, gift_id=gift.id, email="mallory@example.org")
    assert fake_stripe.posts[before:] == []
    _row, changes, _emails = await _state(sessions, gift.id)
    assert changes == []
