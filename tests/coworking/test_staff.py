"""Staff views: members per site with status, plan, since when and what they owe; filters and
CSV; a member's history; pass days; revenue invoiced in advance across a year-end (487)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

from sqlalchemy import select

from funding.coworking.lifecycle import accrual_drafts, apply_invoice, apply_subscription, sale_draft, settle_invoice_charge
from funding.coworking.models import Pass, Plan
from funding.coworking.reports import deferred_revenue, fiscal_year_end, member_page, member_rows
from funding.db import transaction
from funding.mail.service import enqueue
from funding.payments.models import Payment
from funding.scoping import OrgScope, set_scope
from tests.support.coworking import DAY, active_member, invoice, line, new_member, sub_metadata, subscription, unix
from tests.support.db import counted
from tests.support.stripe_objects import now
from tests.support.web import csrf_of, login_as, text_of


async def _crowd(sessions, world, catalogue, fake):
    julie, *_ = await active_member(sessions, world, catalogue, fake, name="Julie Fayolle")
    kevin, sub_k, _row_k, _ = await active_member(sessions, world, catalogue, fake, code="fixe", name="Kévin Lopez")
    due = invoice(customer=kevin.stripe_customer_id, sub=sub_k, status="open", attempt_count=2,
                  billing_reason="subscription_cycle",
                  lines=[line(price_id=catalogue.price_id("fixe"), amount=26400, start=now(), end=now() + 30 * DAY,
                              sub_id=sub_k["id"])])
    async with transaction(sessions) as session:
        await apply_subscription(session, {**sub_k, "status": "unpaid"}, now() + 10)
        await apply_invoice(session, due, now() + 10)
    nobody = await new_member(sessions, world, name="Léa Perrin", company="Perrin Design", siren="934561200")
    return julie, kevin, nobody


async def test_members_per_site_with_status_plan_since_and_overdue_filters_and_csv(app_client, sessions, settings, world,
                                                                                   catalogue, fake):
    await _crowd(sessions, world, catalogue, fake)
    await active_member(sessions, world, catalogue, fake, code="adhesion", name="Amandine Brun")
    await login_as(app_client, sessions, settings, world.users["staff"])
    page = await app_client.get("/admin/coworking")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Julie Fayolle" in text and "Kévin Lopez" in text and "Léa Perrin" in text and "Perrin Design" in text
    assert "impayé" in text and "264,00\u00a0€" in text and "sans abonnement" in text

    only_unpaid = text_of((await app_client.get("/admin/coworking?status=unpaid")).text)
    assert "Kévin Lopez" in only_unpaid and "Julie Fayolle" not in only_unpaid
    by_plan = text_of((await app_client.get(f"/admin/coworking?plan={catalogue.plans['flex'].id}")).text)
    assert "Julie Fayolle" in by_plan and "Kévin Lopez" not in by_plan
    other_site = text_of((await app_client.get("/admin/coworking?site=" + world.site_slug.replace("thiers", "courpiere"))).text)
    assert "Aucun membre ne correspond" in other_site
    assert "Léa Perrin" in text_of((await app_client.get("/admin/coworking?q=perrin design")).text)
    assert (await app_client.get("/admin/coworking?status=perdu")).status_code == 400
    assert (await app_client.get("/admin/coworking?site=nulle-part")).status_code == 400

    everyone = await app_client.get("/admin/coworking/membres.csv")
    rows = {r[0]: r for r in csv.reader(io.StringIO(everyone.content.decode("utf-8-sig")), delimiter=";")}
    # The yearly membership fee alone is shown, but gives no desk; a member without anything has no access.
    assert rows["Amandine Brun"][6:9] == ["Adhésion annuelle", "active", "non"]
    assert rows["Léa Perrin"][6:9] == ["", "none", "non"] and rows["Julie Fayolle"][6:9] == ["Poste nomade", "active", "oui"]

    export = await app_client.get("/admin/coworking/membres.csv?status=unpaid")
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][:3] == ["membre", "email", "entreprise"] and len(rows) == 2
    assert rows[1][0] == "Kévin Lopez" and rows[1][6:9] == ["Poste fixe", "unpaid", "non"]
    assert rows[1][-2:] == ["26400", "264,00"]


async def test_a_members_history_shows_subscriptions_invoices_and_emails(app_client, sessions, settings, world, catalogue, fake):
    _julie, kevin, _ = await _crowd(sessions, world, catalogue, fake)
    async with transaction(sessions) as session:
        await enqueue(session, to="kevin@example.org", user_id=kevin.user_id, org_id=world.org_id, dedupe_key="test:1",
                      subject="Paiement refusé : facture X", body_text="…")
    await login_as(app_client, sessions, settings, world.users["accountant"])
    page = await app_client.get(f"/admin/coworking/membres/{kevin.id}")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Poste fixe" in text and "impayé" in text and "Paiement refusé : facture X" in text
    assert "à payer" in text and "payée" in text and f"411 {kevin.aux_code}" in text
    assert "Julie Fayolle" not in text
    assert (await app_client.get("/admin/coworking/membres/999999")).status_code == 404


async def _member_with_pass(sessions, world, catalogue, *, days: int):
    """Hugo Morel, with a paid pass of ``days`` days, none used yet."""
    hugo = await new_member(sessions, world, name="Hugo Morel")
    async with transaction(sessions) as session:
        payment = Payment(org_id=world.org_id, site_id=world.site_id, purpose="pass", amount=3600, currency="EUR",
                          description="Carnet", status="paid")
        session.add(payment)
        await session.flush()
        session.add(Pass(member_id=hugo.id, plan_id=catalogue.plans["carnet-10"].id, site_id=world.site_id,
                         payment_id=payment.id, days_total=days, days_used=0,
                         expires_on=dt.date.today() + dt.timedelta(days=30)))
    return hugo


async def test_staff_count_pass_days_once_per_day_and_never_beyond_the_pass(app_client, sessions, settings, world, catalogue):
    hugo = await _member_with_pass(sessions, world, catalogue, days=2)
    await login_as(app_client, sessions, settings, world.users["staff"])
    token = csrf_of((await app_client.get(f"/admin/coworking/membres/{hugo.id}")).text)
    url = f"/admin/coworking/membres/{hugo.id}/journee"
    messages = []
    for day in ("2026-11-02", "2026-11-02", "2026-11-03", "2026-11-04", "hier"):
        response = await app_client.post(url, data={"csrf_token": token, "day": day})
        assert response.status_code == 303
        messages.append(text_of((await app_client.get(f"/admin/coworking/membres/{hugo.id}")).text))
    assert "1 jour restant sur ce pass" in messages[0]
    assert "déjà décomptée" in messages[1]
    assert "0 jour restant sur ce pass" in messages[2]
    assert "Aucun pass en cours" in messages[3]
    assert "Date invalide" in messages[4]
    async with sessions() as session:
        assert (await session.scalar(select(Pass))).days_used == 2


async def test_revenue_paid_in_advance_across_the_year_end_is_reported_for_487(app_client, sessions, settings, world,
                                                                               catalogue, fake):
    member = await new_member(sessions, world, name="Amandine Brun")
    year = dt.date.today().year - 1
    sub = subscription(customer=member.stripe_customer_id, price=catalogue.prices["flex"],
                       metadata=sub_metadata(member, catalogue.plans["flex"]))
    dec15, jan15 = unix(dt.date(year, 12, 15)), unix(dt.date(year + 1, 1, 15))
    jun1, next_jun1 = unix(dt.date(year, 6, 1)), unix(dt.date(year + 1, 6, 1))
    desk = invoice(customer=member.stripe_customer_id, sub=sub, created=dec15, lines=[
        line(price_id=catalogue.price_id("flex"), amount=18000, start=dec15, end=jan15, sub_id=sub["id"])])
    fee = invoice(customer=member.stripe_customer_id, sub=sub, created=jun1, lines=[
        line(price_id=catalogue.price_id("adhesion"), amount=3000, start=jun1, end=next_jun1, sub_id=sub["id"])])
    later = invoice(customer=member.stripe_customer_id, sub=sub, created=jan15, lines=[
        line(price_id=catalogue.price_id("flex"), amount=18000, start=jan15, end=jan15 + 31 * DAY, sub_id=sub["id"])])
    async with transaction(sessions) as session:
        for inv in (desk, fee, later):
            await apply_invoice(session, inv, now())
    async with sessions() as session:
        report = await deferred_revenue(session, world.org_id, year)
    assert report.year_end == dt.date(year, 12, 31)

    def share(base, start, end):
        cutoff = int(dt.datetime.combine(dt.date(year + 1, 1, 1), dt.time(), dt.timezone(dt.timedelta(hours=1))).timestamp())
        return (base * (end - cutoff) * 2 + (end - start)) // (2 * (end - start))

    assert [(line.invoice, line.account, line.base, line.deferred) for line in report.lines] == [
        (fee["number"], "7562", 3000, share(3000, jun1, next_jun1)),
        (desk["number"], "706", 15000, share(15000, dec15, jan15)),
    ]
    assert report.by_account == [("706", "EUR", share(15000, dec15, jan15)), ("7562", "EUR", share(3000, jun1, next_jun1))]
    assert share(15000, dec15, jan15) == 7036  # 14 days 13 h of 31 days after midnight, Paris time

    await login_as(app_client, sessions, settings, world.users["accountant"])
    page = await app_client.get(f"/admin/coworking/produits-constates-d-avance?annee={year}")
    assert page.status_code == 200 and "70,36\u00a0€" in page.text
    export = await app_client.get(f"/admin/coworking/produits-constates-d-avance.csv?annee={year}")
    rows = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][-2:] == ["constate_d_avance", "devise"] and rows[2][2] == "706" and rows[2][-2:] == ["70,36", "EUR"]
    assert (await app_client.get("/admin/coworking/produits-constates-d-avance?annee=deux")).status_code == 400
    assert fiscal_year_end(2026, 7) == dt.date(2026, 6, 30)


async def test_plans_page_lists_each_sites_plans_and_stripe_prices(app_client, sessions, settings, world, catalogue):
    await login_as(app_client, sessions, settings, world.users["staff"])
    text = text_of((await app_client.get("/admin/coworking/formules")).text)
    assert "Poste nomade" in text and catalogue.price_id("flex") in text and "7562" in text
    async with sessions() as session:
        assert len((await session.scalars(select(Plan))).all()) == 5


async def test_a_pass_day_counted_today_opens_the_spaces_for_that_day_only(app_client, sessions, settings, world, catalogue):
    from funding.coworking.lifecycle import member_access
    from funding.coworking.service import use_pass_day

    hugo = await _member_with_pass(sessions, world, catalogue, days=10)
    async with sessions() as session:  # a pass bought is not yet a day in the spaces
        assert (await member_access(session, hugo.id)).granted is False
    async with transaction(sessions) as session:
        await use_pass_day(session, hugo, day=dt.date.today(), recorded_by="test")
    async with sessions() as session:
        today = await member_access(session, hugo.id)
        tomorrow = await member_access(session, hugo.id, now=dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(days=1))
    assert (today.granted, today.reason) == (True, "pass")
    assert tomorrow.granted is False
    await login_as(app_client, sessions, settings, world.users["staff"])
    page = text_of((await app_client.get(f"/admin/coworking/membres/{hugo.id}")).text)
    assert "journée de pass aujourd'hui" in page
    listing = text_of((await app_client.get("/admin/coworking")).text)
    assert "Hugo Morel" in listing and "oui (journée de pass)" in listing


async def test_the_487_report_follows_accrual_and_counts_the_unused_days_of_passes(sessions, world, catalogue, fake):
    """An open invoice is in the books, so its advance share is deferred; a void one is not;
    a pass bought before the year-end defers its days still unused then."""
    from funding.coworking.models import PassDay

    member = await new_member(sessions, world, name="Amandine Brun")
    year = dt.date.today().year - 1
    sub = subscription(customer=member.stripe_customer_id, price=catalogue.prices["flex"],
                       metadata=sub_metadata(member, catalogue.plans["flex"]))
    dec15, jan15 = unix(dt.date(year, 12, 15)), unix(dt.date(year + 1, 1, 15))
    unpaid = invoice(customer=member.stripe_customer_id, sub=sub, created=dec15, status="open", lines=[
        line(price_id=catalogue.price_id("flex"), amount=18000, start=dec15, end=jan15, sub_id=sub["id"])])
    voided = invoice(customer=member.stripe_customer_id, sub=sub, created=dec15, status="void", lines=[
        line(price_id=catalogue.price_id("flex"), amount=18000, start=dec15, end=jan15, sub_id=sub["id"])])
    hugo = await _member_with_pass(sessions, world, catalogue, days=10)
    async with transaction(sessions) as session:
        for inv in (unpaid, voided):
            await apply_invoice(session, inv, now())
        held = await session.scalar(select(Pass).where(Pass.member_id == hugo.id))
        held.purchased_at = dt.datetime(year, 11, 2, 9)
        held.expires_on = dt.date(year + 1, 11, 2)
        held.days_used = 4
        for day in (dt.date(year, 11, 3), dt.date(year, 12, 1), dt.date(year, 12, 30), dt.date(year + 1, 1, 5)):
            session.add(PassDay(pass_id=held.id, member_id=hugo.id, day=day))  # three by the year-end, one after
    async with sessions() as session:
        report = await deferred_revenue(session, world.org_id, year)
    # The pass: 36,00 TTC at 20 % is 30,00 HT; 7 of its 10 days unused at the year-end.
    assert [(line.invoice, line.base, line.deferred) for line in report.lines] == [
        (unpaid["number"], 15000, 7036), (f"pass-{held.id}", 3000, 2100)]


async def test_the_members_list_comes_a_page_at_a_time_in_a_stable_order(app_client, sessions, settings, world):
    names = [f"Membre {n:02d}" for n in range(7)]
    for name in reversed(names):
        await new_member(sessions, world, name=name, email=f"m{name[-2:]}@example.org")
    await login_as(app_client, sessions, settings, world.users["staff"])
    seen = []
    url = "/admin/coworking?q=membre&par_page=3"
    for number in (1, 2, 3):
        page = await app_client.get(url)
        assert page.status_code == 200
        text = text_of(page.text)
        assert f"Page {number} sur 3" in text and "7 membre(s)" in text
        seen += [name for name in names if name in text]
        links = re.findall(r'rel="next" href="([^"]+)"', page.text)
        if number < 3:
            assert "q=membre" in links[0] and f"page={number + 1}" in links[0] and "par_page=3" in links[0]
            url = "/admin/coworking" + links[0].replace("&amp;", "&")
        else:
            assert not links and 'rel="prev"' in page.text
    assert seen == names  # every member once, by name, whatever order they joined in
    last = text_of((await app_client.get("/admin/coworking?q=membre&par_page=3&page=99")).text)
    assert "Page 3 sur 3" in last and "Membre 06" in last
    for bad in ("page=abc", "page=0", "par_page=-1", "page=" + "9" * 30):
        assert (await app_client.get(f"/admin/coworking?{bad}")).status_code == 200


async def test_a_page_of_the_members_list_costs_one_statement_however_many_members(sessions, world, catalogue, fake):
    """The page's members picked first, then their subscriptions, debts and passes and the list's count joined
    to those only, in one query: one round trip for a few members as for many (issue 19, the staff page). A
    member with several subscriptions is still one row of the page, and a page still holds ``limit`` members."""
    kevin, *_ = await active_member(sessions, world, catalogue, fake, code="fixe", name="Kévin Lopez")
    await active_member(sessions, world, catalogue, fake, code="adhesion", name="Amandine Brun")
    for n in range(6):
        member = await new_member(sessions, world, name=f"Membre {n:02d}", email=f"page{n}@example.org")
        if n < 3:  # a workspace and a membership fee each, on the page asked for and around it
            for code in ("flex", "adhesion"):
                sub = subscription(customer=member.stripe_customer_id, price=catalogue.prices[code],
                                   metadata=sub_metadata(member, catalogue.plans[code]), start=now() - DAY)
                fake.add(sub)
                async with transaction(sessions) as session:
                    await apply_subscription(session, sub, now())
    async with sessions() as session:
        every = await member_rows(session)
        with counted(sessions) as sent:
            total, page = await member_page(session, offset=2, limit=3)
        assert len(sent) == 1, sent
        assert total == len(every) == 8
        assert [r.member.id for r in page] == [r.member.id for r in every[2:5]]
        assert [(r.name, r.plan, r.status, r.access.granted) for r in page] == [
            (r.name, r.plan, r.status, r.access.granted) for r in every[2:5]]
        assert [(r.name, r.plan, r.access.granted) for r in every[2:4]] == [
            ("Membre 00", catalogue.plans["flex"].name, True), ("Membre 01", catalogue.plans["flex"].name, True)]
        assert [r.member.id for r in every].count(kevin.id) == 1
        assert [(r.name, r.plan, r.status) for r in every[:2]] == [("Amandine Brun", catalogue.plans["adhesion"].name, "active"),
                                                                 ("Kévin Lopez", catalogue.plans["fixe"].name, "active")]
        with counted(sessions) as sent:
            past = await member_page(session, offset=30, limit=3)
        assert past == (8, [])  # past the end: counted apart, since no row carries the count


async def test_booking_a_paid_invoice_reads_and_writes_in_a_few_statements(sessions, world, catalogue, fake):
    """apply_invoice writes the row and gets it back in one statement (RETURNING), and the accrual reads
    the sale and a write-off in one (issue 19, invoice booking): 10 statements an invoice before, 7 now."""
    member, sub, _row, _inv = await active_member(sessions, world, catalogue, fake)
    start = now() - DAY
    paid = invoice(customer=member.stripe_customer_id, sub=sub, created=start, billing_reason="subscription_cycle", lines=[
        line(price_id=catalogue.price_id("flex"), amount=catalogue.prices["flex"]["unit_amount"], start=start,
             end=start + 30 * DAY, sub_id=sub["id"])])
    async with transaction(sessions) as session:
        with counted(sessions) as sent:
            row = await apply_invoice(session, paid, now())
            drafts = await accrual_drafts(session, row, paid)
    assert row.stripe_invoice_id == paid["id"] and row.status == "paid" and row.member_id == member.id
    assert [d.source_key for d in drafts] == [f"stripe:{paid['id']}"]
    # member, subscription's site, the plans' prices and tax rates (once a transaction), insert-returning;
    # site, entries (sale and write-off together), user, aux account
    assert not [s for s in sent if s.startswith("SELECT coworking_invoices")], sent  # no read after the write
    assert len([s for s in sent if s.startswith("SELECT entries")]) == 1, sent
    assert len(sent) <= 9, sent
    async with transaction(sessions) as session:  # again, newer: the row is updated and returned by that statement
        with counted(sessions) as sent:
            again = await apply_invoice(session, {**paid, "attempt_count": 2}, now() + 1)
    assert again.attempt_count == 2, sent
    assert not [s for s in sent if s.startswith("SELECT coworking_invoices")], sent
    async with transaction(sessions) as session:  # an older version: refused, and the row as it is comes back
        stale = await apply_invoice(session, {**paid, "attempt_count": 1}, now() - 1000)
    assert stale.attempt_count == 2


async def test_the_members_list_read_as_columns_stays_behind_the_organisation_wall(sessions, world, catalogue, fake):
    """The list reads columns, not ORM rows: the wall still applies to them, to the page picked first and to
    the count taken over it (issue 19)."""
    await active_member(sessions, world, catalogue, fake, name="Julie Fayolle")
    async with sessions() as session:
        set_scope(session, OrgScope(frozenset({world.org_id + 1000})))
        assert await member_page(session, offset=0, limit=50) == (0, [])
        assert await member_rows(session) == []
        set_scope(session, OrgScope(frozenset({world.org_id})))
        total, rows = await member_page(session, offset=0, limit=50)
        assert total == 1 and [(r.name, r.status, r.access.granted) for r in rows] == [("Julie Fayolle", "active", True)]


async def test_booking_and_settling_a_paid_invoice_in_one_transaction_reads_nothing_twice(sessions, world, catalogue, fake):
    """A paid invoice booked as the webhook does it (the row mirrored, its sale drafted, its charge settling the
    member's receivable) in a transaction that has not met the member yet (issue 19, invoice booking): the
    member comes with their person in one read, the subscription's site is read by the statement that writes
    the row, the settlement finds the row that statement returned, and the member's account is written by the
    posting."""
    member, sub, _row, _inv = await active_member(sessions, world, catalogue, fake)
    start = now() - DAY
    paid = invoice(customer=member.stripe_customer_id, sub=sub, created=start, billing_reason="subscription_cycle", lines=[
        line(price_id=catalogue.price_id("flex"), amount=catalogue.prices["flex"]["unit_amount"], start=start,
             end=start + 30 * DAY, sub_id=sub["id"])])
    async with transaction(sessions) as session:
        with counted(sessions) as sent:
            row = await apply_invoice(session, paid, now())
            sale = await sale_draft(session, row)
            allocation = await settle_invoice_charge(session, {"member_id": str(member.id), "invoice": paid["id"]},
                                                     row.total, "EUR")
    assert row.site_id == world.site_id and sale is not None and allocation is not None
    assert [d.source_key for d in allocation.before] == [f"stripe:{paid['id']}"]
    assert allocation.lines[0].aux == member.aux_code and allocation.lines[0].amount == -row.total
    for table in ("coworking_invoices", "coworking_subscriptions", "users"):
        assert not [s for s in sent if s.startswith(f"SELECT {table}.")], sent
    assert len([s for s in sent if s.startswith("SELECT coworking_members.")]) == 1, sent
    # the member's 411 account is asked for, and written by the posting with the batch's others
    assert not [s for s in sent if s.startswith("INSERT INTO aux_accounts")], sent
    assert len(sent) <= 6, sent
