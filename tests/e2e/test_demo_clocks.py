"""``funding demo`` plays its members' history on Stripe Test Clocks: once it has played, no
date that the app or Stripe shows is later than today (the sandbox's global clock stays at
real time), while two months of renewals did happen."""

from __future__ import annotations

import datetime as dt
import re
import time
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import func, select

from funding.coworking.models import Invoice, Member, Subscription
from funding.db import transaction
from funding.demo.seed import seed
from funding.donations.models import RecurringGift, RecurringGiftPayment
from funding.ledger.models import Entry
from funding.payments.models import EventStatus, StripeEvent
from funding.stripe_gateway import SANDBOX_PATH
from tests.support.db import run_async
from tests.support.e2e import db_call, member_client, sandbox_get, wait_for

PARIS = ZoneInfo("Europe/Paris")
MONTHS = {"janv": 1, "févr": 2, "mars": 3, "avr": 4, "mai": 5, "juin": 6, "juil": 7, "août": 8, "sept": 9, "oct": 10,
          "nov": 11, "déc": 12}
# What is still to come may be later than today: the next payment, the end of a notice, a grace period.
AHEAD = re.compile(r"(Prochain paiement|Fin de l(?:'|&#39;|&#x27;)abonnement)</dt>\s*<dd>[^<]*</dd>|jusqu(?:'|&#39;|&#x27;)au [^<]*")
SINCE = re.compile(r"Membre depuis</dt>\s*<dd>([^<]*)</dd>")
FRENCH_DATE = re.compile(r"\b(\d{1,2}) (janv|févr|mars|avr|mai|juin|juil|août|sept|oct|nov|déc)\.? (\d{4})\b")


def _all(e2e, path: str) -> list[dict]:
    out: list[dict] = []
    params = "limit=100"
    while True:
        page = sandbox_get(e2e, f"{path}?{params}")
        out += page["data"]
        if not page["has_more"]:
            return out
        params = f"limit=100&starting_after={page['data'][-1]['id']}"


def test_the_demo_plays_renewals_on_test_clocks_and_shows_no_date_after_today(e2e):
    from funding.demo.run import _play

    async def seeded(sessions):
        async with transaction(sessions) as session:
            await seed(session)

    db_call(e2e.settings, seeded)
    run_async(lambda: _play(e2e.settings))

    # Wait until Stripe has delivered everything and the app has processed it (a loaded machine lags).
    async def unsettled(sessions):
        async with sessions() as session:
            return await session.scalar(select(func.count(StripeEvent.id)).where(
                StripeEvent.status.in_((EventStatus.PENDING, EventStatus.PROCESSING, EventStatus.FAILED))))

    def settled():
        httpx.post(f"{e2e.url}{SANDBOX_PATH}/_admin/deliver", timeout=30)
        events = sandbox_get(e2e, "/_admin/events")["data"]
        delivered = all((e.get("sandbox_delivery") or {}).get("delivered_at") for e in events)
        return delivered and db_call(e2e.settings, unsettled) == 0

    wait_for(settled, timeout=180, what="every event delivered and processed")
    now = int(time.time()) + 5
    today = dt.datetime.now(PARIS).date()  # the app dates in Paris time: at 23:30 UTC it is already tomorrow there

    # Stripe's side: the global clock is today's, and so is everything it made.
    assert sandbox_get(e2e, "/_admin/clock")["now"] <= now
    clocks = _all(e2e, "/v1/test_helpers/test_clocks")
    assert clocks and all(c["status"] == "ready" and c["frozen_time"] <= now for c in clocks)
    invoices = _all(e2e, "/v1/invoices")
    for kind in ("/v1/invoices", "/v1/charges", "/v1/subscriptions", "/v1/refunds", "/v1/credit_notes"):
        for obj in invoices if kind == "/v1/invoices" else _all(e2e, kind):
            stamps = [obj.get(k) for k in ("created", "start_date", "effectively_at", "period_end", "status_transitions")]
            stamps += list((obj.get("status_transitions") or {}).values()) if isinstance(obj.get("status_transitions"), dict) else []
            for item in (obj.get("items") or {}).get("data") or []:
                stamps += [item.get("current_period_start")]
            assert all(s <= now for s in stamps if isinstance(s, int)), (kind, obj["id"], stamps)
    # Two months of history did happen, on the clocks: renewals of members who joined back then.
    assert min(i["created"] for i in invoices) <= now - 60 * 86_400
    assert sum(1 for i in invoices if i["billing_reason"] == "subscription_cycle") >= 6

    # The app's side: subscriptions, invoices and the books.
    async def dates(sessions):
        async with sessions() as session:
            subs = (await session.scalars(select(Subscription))).all()
            bills = (await session.scalars(select(Invoice))).all()
            entries = (await session.scalars(select(Entry.entry_date))).all()
            member_ids = (await session.scalars(select(Member.id).join(Subscription, Subscription.member_id == Member.id)
                                                .order_by(Member.id))).all()
        moments = [s.started_at for s in subs] + [s.current_period_start for s in subs if s.current_period_start]
        moments += [b.issued_at for b in bills] + [b.paid_at for b in bills if b.paid_at]
        return moments, list(entries), sorted(set(member_ids))

    moments, entry_dates, member_ids = db_call(e2e.settings, dates)
    assert moments and member_ids
    assert max(m.replace(tzinfo=None) for m in moments) <= dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(seconds=5)
    assert max(entry_dates) <= today
    assert min(m.date() for m in moments) <= today - dt.timedelta(days=60)

    # The member area, as the members read it ("Membre depuis …", their invoices).
    seen = 0
    for member_id in member_ids:
        with member_client(e2e, member_id) as client:
            for path in ("/membre", "/membre/factures"):
                page = client.get(path)
                if page.status_code != 200:
                    continue
                for since in SINCE.findall(page.text):  # the symptom of the issue: "Membre depuis 10 févr. 2027"
                    (day, month, year), = FRENCH_DATE.findall(since)
                    assert dt.date(int(year), MONTHS[month], int(day)) <= today - dt.timedelta(days=60), since
                for day, month, year in FRENCH_DATE.findall(AHEAD.sub("", page.text)):
                    shown = dt.date(int(year), MONTHS[month], int(day))
                    assert shown <= today, (member_id, path, shown)
                    seen += 1
    assert seen > len(member_ids)

    # The demo's recurring gifts: by card, set up, its first instalment paid and booked as a gift; by SEPA Direct
    # Debit, its first debit processing (the sandbox's clock does not move): nothing paid yet.
    async def gifts(sessions):
        async with sessions() as session:
            return [(g.status, g.interval, len((await session.scalars(select(RecurringGiftPayment.id)
                                                                       .where(RecurringGiftPayment.gift_id == g.id))).all()))
                    for g in (await session.scalars(select(RecurringGift).order_by(RecurringGift.id))).all()]

    assert db_call(e2e.settings, gifts) == [("active", "month", 1), ("incomplete", "month", 0)]
    assert httpx.get(f"{e2e.url}/healthz", timeout=5).status_code == 200
