"""Two fiscal years played through the Stripe sandbox's Test Clock (issue 14's first "done when").

A member pays a monthly desk on a clock frozen in January of year 1, gives twice (year 1 and
year 2, on the same clock), and two grants are recorded by command (an operating grant, and a
multi-year grant whose second half waits in 487). The clock then runs month by month to the end
of year 2, everything reaching the books through webhooks (delivered late, twice, in any order).
Year 1's twelve months are closed, then the year by ``funding ledger close-year``: year 2 opens
with à-nouveaux equal to year 1's closing balances of classes 1 to 5 (the result on 120/129),
its FEC begins with them, and its trial balance, general ledger and annual accounts agree to
the cent. Year 1 and 2 are whole past years, so every month closes whatever the date."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import func, select, update

from funding.campaigns.models import TaxReceipt
from funding.clock import paris_today
from funding.coworking import billing
from funding.coworking.members import check_details, enrol, ensure_customer
from funding.coworking.models import Invoice, InvoiceStatus, Plan
from funding.db import transaction
from funding.donations.service import donor_token
from funding.exports.books import general_ledger
from funding.exports.journal import Scope, fec
from funding.ledger.annual import annual_accounts
from funding.ledger.models import Entry, Posting
from funding.ledger.service import close_months, trial_balance
from funding.orgs.models import Organisation, Site
from funding.payments.models import EventStatus, Payment, PaymentPurpose, PaymentStatus, StripeEvent
from funding.payments.service import start_checkout
from funding.stripe_gateway import SANDBOX_PATH, StripeGateway
from tests.support.annual import check_bilan_against_trial_balance
from tests.support.cli import invoke
from tests.support.e2e import GOOD, db_call, pay_on_hosted_page, sandbox_get, setup, wait_for

PARIS = ZoneInfo("Europe/Paris")
Y1, Y2 = 2024, 2025
SIRET = "20005376700014"  # Région Auvergne-Rhône-Alpes
NAME, EMAIL, ADDRESS = "Julie Fayolle", "julie.fayolle@example.org", "5 rue Durolle\n63300 Thiers"


def stamp(day: dt.date, hour: int = 12) -> int:
    return int(dt.datetime(day.year, day.month, day.day, hour, tzinfo=PARIS).timestamp())


def naive_utc(ts: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC).replace(tzinfo=None)


def months(year: int) -> list[str]:
    return [f"{year}-{m:02d}" for m in range(1, 13)]


def test_two_years_through_the_sandbox_clock(e2e):
    world = setup(e2e)
    settings, base = e2e.settings, e2e.settings.base_url
    t0 = stamp(dt.date(Y1, 1, 10), 10)

    async def calendar_year_and_member(sessions):
        async with transaction(sessions) as session:  # the world's year ends this month; this one is the calendar's
            await session.execute(update(Organisation).where(Organisation.id == world.org_id).values(fiscal_year_start_month=1))
        gw = StripeGateway(settings)
        try:
            async with sessions() as session:
                site = await session.get(Site, world.site_id)
                plan = await session.scalar(select(Plan).where(Plan.site_id == world.site_id, Plan.code == "flex"))
            details = check_details(name=NAME, email=EMAIL, address=ADDRESS)
            async with transaction(sessions) as session:
                member, _created = await enrol(session, site, details)
                member.address = details.address or ""
            customer = await ensure_customer(sessions, gw, member.id)
            clock = await gw.create("test_helpers.test_clocks", {"frozen_time": t0, "name": "Deux exercices", "customer": customer},
                                    key=f"two-years-clock-{member.id}")
            url = await billing.start_subscription(
                sessions, gw, member_id=member.id, plan_id=plan.id,
                success_url=f"{base}/coworking/bienvenue?session_id={{CHECKOUT_SESSION_ID}}", cancel_url=f"{base}/coworking")
            return member.id, customer, clock["id"], url
        finally:
            await gw.aclose()

    member_id, customer, clock_id, url = db_call(settings, calendar_year_and_member)
    with httpx.Client(base_url=e2e.url, follow_redirects=False, timeout=30) as client:
        paid = pay_on_hosted_page(client, url, GOOD, name=NAME, email=None)
        assert paid.status_code in (302, 303), paid.text[:300]
        assert client.get(paid.headers["location"]).status_code == 200
    frozen = t0

    def give(amount: int) -> None:
        """A gift from the member, on their clock (its Checkout session opens at the clock's time)."""
        async def go(sessions):
            gw = StripeGateway(settings)
            try:
                _payment, url = await start_checkout(
                    sessions, gw, purpose=PaymentPurpose.DONATION, org_id=world.org_id, site_id=world.site_id, amount=amount,
                    currency="EUR", description="Don à Thiers", email=EMAIL, name=NAME, customer=customer,
                    donor={"donor_address": ADDRESS, "company_name": None, "company_siren": None},
                    donor_link=lambda payment_id: f"{base}/soutenir/recu/{donor_token(settings.secret_key, payment_id)}",
                    success_url=f"{base}/soutenir/merci?session_id={{CHECKOUT_SESSION_ID}}", cancel_url=f"{base}/soutenir",
                    opened_at=naive_utc(frozen))
                return url
            finally:
                await gw.aclose()

        url = db_call(settings, go)
        with httpx.Client(base_url=e2e.url, follow_redirects=False, timeout=30) as client:
            paid = pay_on_hosted_page(client, url, GOOD, name=NAME, email=None)
            assert paid.status_code in (302, 303), paid.text[:300]
            assert client.get(paid.headers["location"]).status_code == 200

    def advance_to(day: dt.date) -> None:
        nonlocal frozen
        frozen = stamp(day)
        auth = {"authorization": "Bearer sk_test_e2e"}
        answer = httpx.post(f"{e2e.url}{SANDBOX_PATH}/v1/test_helpers/test_clocks/{clock_id}/advance",
                            data={"frozen_time": str(frozen)}, headers=auth, timeout=60)
        assert answer.status_code == 200, answer.text
        wait_for(lambda: sandbox_get(e2e, f"/v1/test_helpers/test_clocks/{clock_id}")["status"] == "ready", timeout=60,
                 what="the clock ready")
        httpx.post(f"{e2e.url}{SANDBOX_PATH}/_admin/deliver", timeout=30)

    def record(*args: str) -> None:
        done = invoke("ledger", "record", *args, database_url=settings.database_url)
        assert done.exit_code == 0, done.stderr

    grant = ("--site", world.site_slug, "--funder", "Région Auvergne-Rhône-Alpes", "--funder-siret", SIRET,
             "--object", "Animation du tiers-lieu")
    record("grant-notified", "--date", f"{Y1}-02-15", "--amount", "6000,00", "--reference", "FONC-1", "--nature", "operating",
           *grant)
    record("grant-paid", "--date", f"{Y1}-04-02", "--amount", "6000,00", "--reference", "FONC-1", "--piece", "RELEVE-04")
    record("grant-notified", "--date", f"{Y1}-06-20", "--amount", "10000,00", "--reference", "PLURI-1", "--nature",
           "multi-year", "--years", "2", *grant)

    # Year 1, month by month: the desk renews on the 10th; a gift in March.
    for month in range(2, 13):
        advance_to(dt.date(Y1, month, 11))
        if month == 3:
            give(8_000)
    # Year 2: the renewals go on, the multi-year grant's second half is paid, another gift in May.
    record("grant-paid", "--date", f"{Y2}-02-03", "--amount", "10000,00", "--reference", "PLURI-1", "--piece", "RELEVE-02")
    for month in range(1, 13):
        advance_to(dt.date(Y2, month, 11))
        if month == 5:
            give(4_000)
    advance_to(dt.date(Y2, 12, 20))

    # Everything delivered and processed: 24 paid invoices, both gifts paid, every event done.
    async def unsettled(sessions):
        async with sessions() as session:
            events = await session.scalar(select(func.count(StripeEvent.id)).where(
                StripeEvent.status.in_((EventStatus.PENDING, EventStatus.PROCESSING, EventStatus.FAILED))))
            invoices = await session.scalar(select(func.count(Invoice.id)).where(Invoice.member_id == member_id,
                                                                                  Invoice.status == InvoiceStatus.PAID))
            gifts = await session.scalar(select(func.count(Payment.id)).where(Payment.purpose == PaymentPurpose.DONATION,
                                                                               Payment.status == PaymentStatus.PAID))
        return events, invoices, gifts

    def settled():
        httpx.post(f"{e2e.url}{SANDBOX_PATH}/_admin/deliver", timeout=30)
        delivered = all((e.get("sandbox_delivery") or {}).get("delivered_at") for e in sandbox_get(e2e, "/_admin/events")["data"])
        return delivered and db_call(settings, unsettled) == (0, 24, 2)

    wait_for(settled, timeout=300, what="every event delivered and processed")

    # Year 1 closed: its twelve months, then the year by its command.
    async def close(sessions):
        async with transaction(sessions) as session:
            await close_months(session, world.org_id, months(Y1), closed_by="test")

    db_call(settings, close)
    closed = invoke("ledger", "close-year", str(Y1), "--org", world.siren, database_url=settings.database_url)
    assert closed.exit_code == 0, closed.stderr
    end1, start2, end2 = dt.date(Y1, 12, 31), dt.date(Y2, 1, 1), dt.date(Y2, 12, 31)

    async def books(sessions):
        async with sessions() as session:
            def by_account_aux(where):
                return (select(Posting.account_number, Posting.aux_code, func.sum(Posting.amount))
                        .join(Entry, Entry.id == Posting.entry_id)
                        .where(Entry.org_id == world.org_id, Entry.number.is_not(None), *where)
                        .group_by(Posting.account_number, Posting.aux_code))
            year1 = (await session.execute(by_account_aux([Entry.entry_date <= end1, Entry.journal_code != "AN"]))).all()
            an = (await session.execute(by_account_aux([Entry.journal_code == "AN"]))).all()
            an_lines = await session.scalar(select(func.count(Posting.id)).join(Entry, Entry.id == Posting.entry_id)
                                            .where(Entry.org_id == world.org_id, Entry.journal_code == "AN"))
            an_days = set((await session.scalars(select(Entry.entry_date).where(Entry.org_id == world.org_id,
                                                                                 Entry.journal_code == "AN"))).all())
            receipts = (await session.execute(select(TaxReceipt.year, TaxReceipt.number, TaxReceipt.paid_on, TaxReceipt.amount)
                                              .where(TaxReceipt.org_id == world.org_id).order_by(TaxReceipt.id))).all()
            tb = await trial_balance(session, org_id=world.org_id, start=start2, end=end2, openings=True)
            acc = await annual_accounts(session, org_id=world.org_id, year=Y2)
        return year1, an, an_lines, an_days, receipts, tb, acc

    year1, an, an_lines, an_days, receipts, tb, acc = db_call(settings, books)
    # Each gift has its tax receipt, numbered in the year it is issued (today's), stating the day
    # Stripe took the money (the clock's), as the books date it.
    issued = paris_today().year
    assert [tuple(r) for r in receipts] == [(issued, 1, dt.date(Y1, 3, 11), 8_000), (issued, 2, dt.date(Y2, 5, 11), 4_000)]

    # The à-nouveaux: year 1's closing balances of classes 1 to 5, account by account and by auxiliary,
    # and its result (classes 6 and 7) on 120 (surplus) or 129 (deficit).
    assert an_days == {start2}
    closing = {(a, x): int(s) for a, x, s in year1 if a[0] in "12345" and int(s)}
    result1 = -sum(int(s) for a, _x, s in year1 if a[0] in "67")
    carried = {(a, x): int(s) for a, x, s in an if int(s)}
    assert result1 > 0  # a year of desks, gifts and a grant: a surplus
    assert {k: v for k, v in carried.items() if k[0] not in ("120", "129")} == closing
    assert sum(v for k, v in carried.items() if k[0] in ("120", "129")) == -result1
    # The books did take in what was played: the desk's sales, both gifts in their years, both grants.
    assert any(a == "706" for a, _x, _s in year1) and any(a.startswith("754") for a, _x, _s in year1)
    assert any(a == "487" for a, _x in closing) and any(a.startswith("74") for a, _x, _s in year1)

    # The FEC of year 2 begins with them.
    scope = Scope(org_id=world.org_id, siren=world.siren, org_name="Association Test", currency="EUR", start=start2, end=end2)

    async def exports(engine_sessions):
        from funding.db import create_engine

        engine = create_engine(settings.database_url)
        try:
            async with engine.connect() as conn:
                text_ = b"".join([chunk async for chunk in fec(conn, scope)]).decode("utf-8-sig")
            lines = []
            async with engine.connect() as conn:
                async for part in general_ledger(conn, scope):
                    lines += part
            return text_, lines
        finally:
            await engine.dispose()

    fec_text, gl_lines = db_call(settings, exports)
    header, *records = [line.split("\t") for line in fec_text.splitlines()]
    column = {name: i for i, name in enumerate(header)}
    count = next(i for i, r in enumerate(records) if r[column["JournalCode"]] != "AN")
    opening = records[:count]
    assert count == an_lines > 0
    assert {r[column["EcritureDate"]] for r in opening} == {f"{Y2}0101"}
    assert all(r[column["JournalCode"]] != "AN" for r in records[count:])

    def cents(text_: str) -> int:
        units, _, frac = text_.replace(" ", "").partition(",")
        return int(units or 0) * 100 + int((frac + "00")[:2])

    fec_an: dict[str, int] = defaultdict(int)
    for r in opening:
        fec_an[r[column["CompteNum"]]] += cents(r[column["Debit"]]) - cents(r[column["Credit"]])
    by_account: dict[str, int] = defaultdict(int)
    for (a, _x), v in carried.items():
        by_account[a] += v
    assert {a: v for a, v in fec_an.items() if v} == {a: v for a, v in by_account.items() if v}

    # Trial balance and general ledger of year 2 agree, account by account, to the cent.
    balances = {(r.account, r.currency): (r.opening, r.debit, r.credit) for r in tb}
    gl: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for line in gl_lines:
        key = (line.account, line.currency)
        if line.kind == "opening":
            gl[key][0] = line.balance
        elif line.kind == "total":
            gl[key][1:] = [line.debit, line.credit, line.balance]
    assert set(gl) == set(balances)
    for key, (opening_, debit_, credit_) in balances.items():
        assert gl[key] == [opening_, debit_, credit_, opening_ + debit_ - credit_], key
    # Year 1 closed, nothing is carried into year 2 but through its à-nouveaux (its first day's moves).
    assert all(o == 0 for o, _d, _c in balances.values())
    assert all(gl[key][0] == 0 for key in gl)

    # The annual accounts of year 2: its result is the trial balance's classes 6 and 7, the year
    # before beside is year 1's, the bilan balances, and each of its lines is the trial balance's.
    assert acc.result == (-sum(r.balance for r in tb if r.account[0] in "67"), result1)
    assert acc.balanced and acc.total_actif[0] > 0
    check_bilan_against_trial_balance(acc, tb)
    assert sum(r.balance for r in tb) == 0
