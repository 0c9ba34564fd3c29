"""Coworking benchmark (PostgreSQL): the staff members page and invoice booking.

    python bench/coworking_bench.py [--members 2000] [--invoices 12] [--book 2000]

Creates a throw-away database on TEST_POSTGRES_URL (default the local server), then:

1. MEMBERS members with a subscription each (statuses mixed) and INVOICES invoices each;
   times the staff list (`member_rows`: members, their subscriptions and what they owe,
   with access computed) against a plain SELECT of the same members through the same
   driver, and measures the Python memory the list takes (tracemalloc);
2. books BOOK paid invoices as webhooks do (`apply_invoice` then the [VT] sale entry, and
   the [ST] settlement through the ``invoice`` purpose) against posting the same two entries
   as bare drafts, in batches of 100 per transaction.

Prints ratios measured in this run, not verdicts: compare within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import secrets
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, select, text

from funding.auth.models import User
from funding.coworking.lifecycle import apply_invoice, sale_draft, settle_invoice_charge
from funding.coworking.models import Invoice, Member, PlanPrice, Subscription
from funding.coworking.plans import PlanSpec, price_ttc, save_plan
from funding.coworking.reports import member_page, member_rows
from funding.db import create_engine, session_factory, transaction, utcnow
from funding.ledger.models import AuxAccount
from funding.ledger.service import EntryDraft, Line, post
from funding.migrate import upgrade
from funding.orgs.models import Site
from funding.orgs.service import create_organisation, create_site

ADMIN = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
STATUSES = ["active"] * 14 + ["past_due", "unpaid", "canceled", "trialing"]


async def admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def timed_together(first, second, rounds: int) -> tuple[tuple[float, object], tuple[float, object]]:
    """Both timed in alternation, the median of each: drift on a shared machine hits both alike."""
    times: tuple[list[float], list[float]] = ([], [])
    results: list[object] = [None, None]
    for n in range(rounds):
        for k, fn in ((0, first), (1, second)) if n % 2 == 0 else ((1, second), (0, first)):
            started = time.perf_counter()
            results[k] = await fn()
            times[k].append(time.perf_counter() - started)
    return (statistics.median(times[0]), results[0]), (statistics.median(times[1]), results[1])


def invoice_object(n: int, customer: str, member_id: int, site_id: int, price_id: str, amount: int) -> dict:
    start = 1_750_000_000 + (n % 100_000) * 60  # mid-2025: in the past, like every booked invoice
    return {
        "id": f"in_bench_{n}", "object": "invoice", "status": "paid", "number": f"BENCH-{n:06d}", "customer": customer,
        "currency": "eur", "total": amount, "amount_due": amount, "amount_paid": amount, "amount_remaining": 0,
        "attempt_count": 1, "billing_reason": "subscription_cycle", "created": start, "metadata": {},
        "hosted_invoice_url": f"https://invoice.example/{n}", "invoice_pdf": f"https://invoice.example/{n}/pdf",
        "status_transitions": {"finalized_at": start, "paid_at": start},
        "parent": {"type": "subscription_details", "subscription_details": {
            "subscription": f"sub_bench_{member_id}", "metadata": {"member_id": str(member_id), "site_id": str(site_id)}}},
        "lines": {"object": "list", "has_more": False, "data": [{
            "id": f"il_{n}", "object": "line_item", "amount": amount, "currency": "eur", "description": "1 × Poste nomade",
            "metadata": {}, "period": {"start": start, "end": start + 30 * 86_400},
            "pricing": {"type": "price_details", "price_details": {"price": price_id, "product": "prod_bench"}},
            "parent": {"type": "subscription_item_details",
                       "subscription_item_details": {"proration": False, "subscription": f"sub_bench_{member_id}"}}}]},
    }


async def seed(sessions, members: int, invoices: int):
    async with transaction(sessions) as session:
        org = await create_organisation(session, name="Bench", siren="912345675", vat_liable=True)
        site = await create_site(session, org_id=org.id, slug="bench", name="Bench")
        plans = [await save_plan(session, site, PlanSpec("flex", "Poste nomade", "workspace", "150", "20", "706", "month")),
                 await save_plan(session, site, PlanSpec("fixe", "Poste fixe", "workspace", "220", "20", "706", "month"))]
        for plan in plans:
            session.add(PlanPrice(plan_id=plan.id, seq=1, amount=price_ttc(plan.price_ht, plan.vat_rate), price_ht=plan.price_ht,
                                  vat_rate=plan.vat_rate, currency="EUR", interval="month", status="active",
                                  stripe_price_id=f"price_bench_{plan.code}"))
    now = utcnow()
    async with transaction(sessions) as session:
        users = [{"email": f"membre{i}@bench.example", "name": f"Membre {i:05d}", "role": "member", "org_id": org.id,
                  "locale": "fr", "active": True, "created_at": now} for i in range(members)]
        user_ids = (await session.scalars(insert(User).returning(User.id, sort_by_parameter_order=True), users)).all()
        rows = [{"user_id": uid, "site_id": site.id, "org_id": org.id, "stripe_customer_id": f"cus_bench_{uid}",
                 "company_name": f"Société {i}" if i % 5 == 0 else None, "created_at": now, "updated_at": now}
                for i, uid in enumerate(user_ids)]
        member_ids = (await session.scalars(insert(Member).returning(Member.id, sort_by_parameter_order=True), rows)).all()
        subs, bills = [], []
        for i, mid in enumerate(member_ids):
            plan = plans[i % 2]
            status = STATUSES[i % len(STATUSES)]
            subs.append({"member_id": mid, "site_id": site.id, "plan_id": plan.id, "kind": "workspace",
                         "stripe_subscription_id": f"sub_bench_{mid}", "stripe_price_id": f"price_bench_{plan.code}",
                         "status": status, "cancel_at_period_end": False, "started_at": now - dt.timedelta(days=400),
                         "past_due_since": now if status == "past_due" else None, "version": 1,
                         "current_period_start": now, "current_period_end": now + dt.timedelta(days=30),
                         "created_at": now, "updated_at": now})
            for k in range(invoices):
                late = status in ("past_due", "unpaid") and k == invoices - 1
                bills.append({"member_id": mid, "site_id": site.id, "stripe_invoice_id": f"in_seed_{mid}_{k}",
                              "stripe_subscription_id": f"sub_bench_{mid}", "number": f"S-{mid}-{k}",
                              "status": "open" if late else "paid", "billing_reason": "subscription_cycle", "currency": "EUR",
                              "total": 18000, "amount_due": 18000, "amount_paid": 0 if late else 18000,
                              "amount_remaining": 18000 if late else 0, "attempt_count": 2 if late else 1,
                              "issued_at": now - dt.timedelta(days=30 * (invoices - k)), "lines": "[]", "version": 1,
                              "updated_at": now})
        await session.execute(insert(Subscription), subs)
        for start in range(0, len(bills), 5000):
            await session.execute(insert(Invoice), bills[start:start + 5000])
    return org, site, plans, list(member_ids)


async def main(args) -> None:
    name = f"funding_bench_{secrets.token_hex(4)}"
    await admin(f'CREATE DATABASE "{name}"')
    url = "postgresql+asyncpg://" + ADMIN.split("://", 1)[1].rsplit("/", 1)[0] + f"/{name}"
    try:
        await asyncio.to_thread(upgrade, url)
        engine = create_engine(url)
        sessions = session_factory(engine)
        print(f"seeding {args.members:,} members × {args.invoices} invoices …", flush=True)
        org, site, plans, member_ids = await seed(sessions, args.members, args.invoices)
        async with engine.begin() as conn:
            await conn.execute(text("ANALYZE"))

        # 1. The staff list against a plain SELECT of the same members.
        async def staff_list():
            async with sessions() as session:
                return await member_rows(session)

        async def plain():
            async with sessions() as session:
                return (await session.execute(select(Member, User.name, User.email, Site.name)
                                              .join(User, User.id == Member.user_id).join(Site, Site.id == Member.site_id)
                                              .order_by(User.name, Member.id))).all()

        await staff_list()
        (select_time, plain_rows), (list_time, rows) = await timed_together(plain, staff_list, rounds=11)
        assert len(rows) == len(plain_rows) == args.members
        assert sum(1 for r in rows if r.overdue) == sum(1 for i in range(args.members) if STATUSES[i % len(STATUSES)]
                                                       in ("past_due", "unpaid"))
        tracemalloc.start()
        await staff_list()
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"staff list: {args.members:,} members ({args.members * args.invoices:,} invoices) in {list_time * 1000:.0f} ms; "
              f"plain SELECT of the members {select_time * 1000:.0f} ms")
        print(f"staff list / plain SELECT = {list_time / select_time:.2f}×; Python memory peak {peak / 1e6:.1f} MB "
              f"({peak / args.members:.0f} B per member)")

        # 1b. One page of the list, as the staff page reads it (the page and the list's count in one
        # query, then the page's subscriptions), against a plain SELECT of the same page of members.
        async def staff_page():
            async with sessions() as session:
                return await member_page(session, offset=args.members // 2, limit=50)

        async def plain_page():
            async with sessions() as session:
                return (await session.execute(select(Member, User.name, User.email, Site.name)
                                              .join(User, User.id == Member.user_id).join(Site, Site.id == Member.site_id)
                                              .order_by(User.name, Member.id).offset(args.members // 2).limit(50))).all()

        await staff_page()
        await plain_page()
        (page_select, plain_page_rows), (page_time, (total, page_rows)) = await timed_together(plain_page, staff_page,
                                                                                              rounds=101)
        assert total == args.members and [r.member.id for r in page_rows] == [m.id for m, *_ in plain_page_rows]
        print(f"staff list page (50 of {args.members:,}): {page_time * 1000:.1f} ms; plain SELECT of the page "
              f"{page_select * 1000:.1f} ms; page / plain SELECT = {page_time / page_select:.2f}×")

        # 2. Booking paid invoices as the webhook does, against posting the same entries as bare drafts.
        price = price_ttc(plans[0].price_ht, plans[0].vat_rate)
        async with transaction(sessions) as session:
            for mid in member_ids[:200]:
                member = await session.get(Member, mid)
                await session.execute(insert(AuxAccount).values(org_id=org.id, code=member.aux_code, label="bench",
                                                                created_at=utcnow()))
        targets = [member_ids[i % 200] for i in range(args.book)]
        async with sessions() as session:
            customers = dict((await session.execute(select(Member.id, Member.stripe_customer_id)
                                                    .where(Member.id.in_(member_ids[:200])))).all())

        async def book_invoices(offset: int) -> None:
            for start in range(0, args.book, 100):
                async with transaction(sessions) as session:
                    drafts = []
                    for n in range(start, min(start + 100, args.book)):
                        mid = targets[n]
                        obj = invoice_object(offset + n, customers[mid], mid, site.id, "price_bench_flex", price)
                        row = await apply_invoice(session, obj, 2)
                        assert row is not None
                        drafts.append(await sale_draft(session, row))
                        allocation = await settle_invoice_charge(session, {"member_id": str(mid), "invoice": obj["id"]},
                                                                 price, "EUR")
                        fee = 295
                        drafts.extend(allocation.before)  # the sale first, as the webhook posts it
                        drafts.append(EntryDraft(org_id=allocation.org_id, site_id=allocation.site_id, journal="ST",
                                                 entry_date=dt.date.today(), label=allocation.label, piece_ref=f"ch_{n}",
                                                 funding_source="self", source_key=f"stripe:txn_bench_{offset + n}",
                                                 lines=[Line("5115", price - fee), Line("627", fee), *allocation.lines]))
                    await post(session, drafts)

        async def bare(offset: int) -> None:
            for start in range(0, args.book, 100):
                async with transaction(sessions) as session:
                    drafts = []
                    for n in range(start, min(start + 100, args.book)):
                        code = f"M{targets[n]:06d}"
                        drafts.append(EntryDraft(org_id=org.id, site_id=site.id, journal="VT", entry_date=dt.date.today(),
                                                 label="Facture", piece_ref=f"B-{offset + n}", funding_source="self",
                                                 source_key=f"bare:vt:{offset + n}",
                                                 lines=[Line("411", price, aux=code), Line("445711", -3000), Line("706", -15000)]))
                        drafts.append(EntryDraft(org_id=org.id, site_id=site.id, journal="ST", entry_date=dt.date.today(),
                                                 label="Règlement", piece_ref=f"ch_{n}", funding_source="self",
                                                 source_key=f"bare:st:{offset + n}",
                                                 lines=[Line("5115", price - 295), Line("627", 295), Line("411", -price, aux=code)]))
                    await post(session, drafts)

        await bare(10_000_000)  # warm both paths up
        await book_invoices(20_000_000)
        started = time.perf_counter()
        await bare(0)
        bare_time = time.perf_counter() - started
        started = time.perf_counter()
        await book_invoices(0)
        book_time = time.perf_counter() - started
        print(f"booking: {args.book:,} paid invoices (sale + settlement) in {book_time:.2f} s "
              f"({args.book / book_time:,.0f} invoices/s); the same {2 * args.book:,} entries as bare drafts in {bare_time:.2f} s")
        print(f"invoice booking / bare posting = {book_time / bare_time:.2f}×")
        await engine.dispose()
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=2_000)
    parser.add_argument("--invoices", type=int, default=12)
    parser.add_argument("--book", type=int, default=2_000)
    asyncio.run(main(parser.parse_args()))
