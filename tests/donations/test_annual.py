"""One tax receipt per donor and year for their recurring gifts: the year's instalments summed
(Paris days), numbered in the one gap-free series, issued once, emailed with its PDF."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from funding.campaigns import receipt_pdf, receipts
from funding.campaigns.models import TaxReceipt
from funding.db import transaction
from funding.donations import annual
from funding.mail.models import Email
from tests.support.recurring import instalment, recurring_gift

YEAR = 2026


async def test_one_receipt_per_donor_sums_their_recurring_gifts_of_the_year(sessions, world):
    async with transaction(sessions) as session:
        ana = await recurring_gift(session, world, email="ana@example.org", name="Ana Martin", amount=2000)
        ana_yearly = await recurring_gift(session, world, email="ana@example.org", name="Ana Martin", amount=5000, interval="year",
                                 site_id=world.other_site_id)
        bob = await recurring_gift(session, world, email="bob@example.org", name="Bob Roux", amount=1000)
        for month in range(1, 13):
            instalment(session, ana, month, dt.datetime(YEAR, month, 5, 9))
        instalment(session, ana_yearly, 1, dt.datetime(YEAR, 3, 1, 9))
        instalment(session, ana, 13, dt.datetime(YEAR - 1, 12, 31, 22, 30))  # 23:30 in Paris: still last year
        instalment(session, bob, 1, dt.datetime(YEAR, 11, 5, 9))
        instalment(session, bob, 2, dt.datetime(YEAR, 12, 31, 23, 30))  # 00:30 on 1 January in Paris: next year's
    issued_at = dt.datetime(YEAR + 1, 1, 15, 8)
    async with transaction(sessions) as session:
        issued = await annual.issue_year(session, YEAR, now=issued_at)
    assert [(r.donor_email, r.amount, r.annual_year, r.year, r.number) for r in issued] == [
        ("ana@example.org", 12 * 2000 + 5000, YEAR, YEAR + 1, 1), ("bob@example.org", 1000, YEAR, YEAR + 1, 2)]
    assert issued[0].paid_on == dt.date(YEAR, 12, 5) and issued[0].payment_id is None and issued[0].pledge_id is None

    async with transaction(sessions) as session:  # January's job runs again: nothing more
        assert await annual.issue_year(session, YEAR, now=issued_at) == []
    async with sessions() as session:
        assert len((await session.scalars(select(TaxReceipt))).all()) == 2
        emails = (await session.scalars(select(Email).order_by(Email.id))).all()
        view = await receipts.view(session, issued[0].id)
    assert [e.to_addr for e in emails] == ["ana@example.org", "bob@example.org"]
    assert "290,00" in emails[0].body_text and emails[0].attachments
    assert view.allocation == f"Dons réguliers de l'année {YEAR} au tiers-lieu Courpière"  # the latest gift's site
    assert view.cerfa == "Cerfa n° 11580*05" and view.rate == 66
    html = receipt_pdf.receipt_html(view)
    assert "deux cent quatre-vingt-dix euros" in html and "3 rue Durolle" in html and "2027-000001" in html


async def test_a_company_gets_the_companies_receipt_and_last_year_is_left_alone(sessions, world):
    async with transaction(sessions) as session:
        gift = await recurring_gift(session, world, email="contact@dumas.example.fr", name="Jean Dumas", amount=10000,
                           company="Coutellerie Dumas SARL", siren="812345676")
        instalment(session, gift, 1, dt.datetime(YEAR, 6, 5, 9))
    async with transaction(sessions) as session:
        assert await annual.issue_year(session, YEAR - 1) == []
        (receipt,) = await annual.issue_year(session, YEAR, now=dt.datetime(YEAR + 1, 1, 2, 8))
    assert receipt.donor_name == "Coutellerie Dumas SARL" and receipt.donor_siren == "812345676" and receipt.amount == 10000
    async with sessions() as session:
        view = await receipts.view(session, receipt.id)
    assert view.cerfa == "Cerfa n° 16216*01" and view.rate == 60


async def test_a_refund_before_january_is_left_out_and_after_it_voids_and_reissues_the_receipt(sessions, world):
    async with transaction(sessions) as session:
        gift = await recurring_gift(session, world, email="ana@example.org", name="Ana Martin", amount=2000)
        for month in (1, 2, 3):
            instalment(session, gift, month, dt.datetime(YEAR, month, 5, 9))
        await session.flush()
        assert await annual.taken_back(session, f"pi_{gift.id}_1", 500, reason="remboursement") is None  # before the receipt
    async with transaction(sessions) as session:
        (first,) = await annual.issue_year(session, YEAR, now=dt.datetime(YEAR + 1, 1, 10, 9))
    assert first.amount == 5500
    async with transaction(sessions) as session:
        replaced = await annual.taken_back(session, f"pi_{gift.id}_2", 2000, reason="litige perdu")
        again = await annual.taken_back(session, f"pi_{gift.id}_2", 2000, reason="litige perdu")  # the same total twice
    assert replaced.amount == 3500 and replaced.revision == 2 and replaced.id != first.id and again is None
    async with sessions() as session:
        voided = await session.get(TaxReceipt, first.id)
        emails = (await session.scalars(select(Email.dedupe_key).order_by(Email.id))).all()
    assert voided.voided_at is not None and voided.void_reason == "litige perdu de 20,00\xa0€"
    assert list(emails) == [f"annual-receipt:{first.id}", f"annual-receipt:{first.id}:voided"]


async def test_the_worker_issues_them_in_january_only_then_rests_once_nothing_is_due(sessions, world, monkeypatch):
    async with transaction(sessions) as session:
        gift = await recurring_gift(session, world, email="ana@example.org", name="Ana Martin", amount=2000)
        instalment(session, gift, 1, dt.datetime(YEAR, 6, 5, 9))
    monkeypatch.setattr(annual, "QUIET", {"until": 0.0})
    monkeypatch.setattr(annual, "paris_today", lambda: dt.date(YEAR, 12, 31))
    assert await annual.january(sessions, None, None) == 0
    monkeypatch.setattr(annual, "paris_today", lambda: dt.date(YEAR + 1, 1, 2))
    assert await annual.january(sessions, None, None) == 1
    assert await annual.january(sessions, None, None) == 0  # nothing more: it rests an hour
    assert annual.QUIET["until"] > 0
