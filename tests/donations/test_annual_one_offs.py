"""The annual receipt of a donor who gives by recurring gift sums their one-off gifts of the year
too (issue 18): the one-off receipts it takes in are voided and name it; refunds and lost
disputes of any of those gifts, and gifts of the year paid after it, keep it true."""

from __future__ import annotations

import calendar
import datetime as dt

from sqlalchemy import select

from funding.campaigns import receipt_pdf, receipts, settle
from funding.campaigns.models import TaxReceipt
from funding.db import transaction
from funding.donations import annual, recurring, service
from funding.mail.models import Email
from funding.payments.models import Payment
from tests.support.campaigns import make_campaign, pledge
from tests.support.recurring import instalment, recurring_gift

YEAR = 2026
JANUARY = dt.datetime(YEAR + 1, 1, 12, 8)


async def _one_off(session, world, *, email, amount, when, receipt=True) -> Payment:
    """A gift on /soutenir paid at ``when``, with the receipt it gets when paid."""
    payment = Payment(org_id=world.org_id, site_id=world.site_id, purpose="donation", amount=amount, currency="EUR",
                      description="Don en ligne", email=email, name="Ana Martin", donor_address="3 rue Durolle\n63300 Thiers",
                      status="paid", paid_at=when, payment_intent_id=f"pi_gift_{email}_{when:%Y%m%d}")
    session.add(payment)
    await session.flush()
    if receipt:
        await receipts.issue_for_payment(session, payment, now=when)
    return payment


async def _ana_s_year(sessions, world):
    """Ana: 20 € a month from March to May, 50 € on /soutenir in June, 30 € to a campaign in July
    (written with capitals), 25 € on /soutenir the year before; Carl: one-off gifts only."""
    campaign = await make_campaign(sessions, world, slug="four-a-pain")
    made = await pledge(sessions, campaign.id, amount="30", email="Ana@Example.org")
    async with transaction(sessions) as session:
        gift = await recurring_gift(session, world, email="ana@example.org", name="Ana Martin", amount=2000)
        for month in (3, 4, 5):
            instalment(session, gift, month, dt.datetime(YEAR, month, 5, 9))
        soutenir = await _one_off(session, world, email="ana@example.org", amount=5000, when=dt.datetime(YEAR, 6, 10, 9))
        last_year = await _one_off(session, world, email="ana@example.org", amount=2500, when=dt.datetime(YEAR - 1, 12, 20, 9))
        carl = await _one_off(session, world, email="carl@example.org", amount=4000, when=dt.datetime(YEAR, 8, 1, 9))
        july = dt.datetime(YEAR, 7, 1, 9)
        paid = await settle.mark_paid(session, made.id, payment_intent_id="pi_pledge_ana", now=july, paid_at=july)
    return gift, soutenir, last_year, carl, paid


async def _receipt_of(session, **where) -> TaxReceipt:
    column, value = next(iter(where.items()))
    return await session.scalar(select(TaxReceipt).where(getattr(TaxReceipt, column) == value).order_by(TaxReceipt.revision.desc()))


async def test_the_annual_receipt_sums_the_year_s_one_off_gifts_and_replaces_their_receipts(sessions, world):
    _gift, soutenir, last_year, carl, paid = await _ana_s_year(sessions, world)
    async with transaction(sessions) as session:
        issued = await annual.issue_year(session, YEAR, now=JANUARY)
    (receipt,) = issued  # Carl never gave by recurring gift: no annual receipt, his own stays
    assert receipt.donor_email == "ana@example.org" and receipt.amount == 3 * 2000 + 5000 + 3000
    assert receipt.paid_on == dt.date(YEAR, 7, 1)  # the last gift's day: the campaign's, after the instalments

    async with sessions() as session:
        taken_in = [await _receipt_of(session, payment_id=soutenir.id), await _receipt_of(session, pledge_id=paid.id)]
        kept = [await _receipt_of(session, payment_id=last_year.id), await _receipt_of(session, payment_id=carl.id)]
        email = await session.scalar(select(Email).where(Email.dedupe_key == f"annual-receipt:{receipt.id}"))
        view = await receipts.view(session, receipt.id)
        one_off_view = await receipts.view(session, taken_in[0].id)
    codes = [receipts.receipt_code(r) for r in taken_in]
    assert [(r.voided_at, r.replaced_by_id, r.void_reason) for r in taken_in] == [(JANUARY, receipt.id, annual.REPLACED)] * 2
    assert [(r.voided_at, r.replaced_by_id) for r in kept] == [(None, None)] * 2
    assert "140,00" in email.body_text and all(code in email.body_text for code in codes) and "réguliers et ponctuels" in email.body_text
    assert view.replaces == codes and view.allocation.startswith(f"Dons réguliers et ponctuels de l'année {YEAR}")
    html = receipt_pdf.receipt_html(view)
    assert "cent quarante euros" in html and "annule et remplace les reçus n° " + ", ".join(codes) in html
    assert one_off_view.replaced_by == receipts.receipt_code(receipt)
    assert f"REÇU ANNULÉ le 12 janvier {YEAR + 1} : {annual.REPLACED} n° {receipts.receipt_code(receipt)}" in receipt_pdf.receipt_html(one_off_view)


async def test_a_refund_or_a_lost_dispute_of_a_taken_in_gift_reissues_the_annual_receipt(sessions, world):
    _gift, soutenir, _last_year, _carl, paid = await _ana_s_year(sessions, world)
    async with transaction(sessions) as session:
        (first,) = await annual.issue_year(session, YEAR, now=JANUARY)
    async with transaction(sessions) as session:
        second = await service.apply_taken_back(session, soutenir.id, 2000)  # 20 € of the 50 refunded
    async with transaction(sessions) as session:
        await settle.apply_refund(session, paid.id, 3000, reason="litige perdu")  # the campaign gift lost in a dispute
    async with transaction(sessions) as session:
        await service.apply_taken_back(session, soutenir.id, 5000, reason="litige perdu")  # the rest of the 50 € disputed
        again = await service.apply_taken_back(session, soutenir.id, 5000, reason="litige perdu")  # the same total again
    async with sessions() as session:
        rows = (await session.scalars(select(TaxReceipt).where(TaxReceipt.annual_year == YEAR).order_by(TaxReceipt.revision))).all()
        keys = (await session.scalars(select(Email.dedupe_key).where(Email.dedupe_key.like("annual-receipt:%")).order_by(Email.id))).all()
        last_view = await receipts.view(session, rows[-1].id)
        payment = await session.get(Payment, soutenir.id)
    assert [(r.revision, r.amount, r.voided_at is None) for r in rows] == [
        (1, 14000, False), (2, 12000, False), (3, 9000, False), (4, 6000, True)]
    assert second.id == rows[1].id and again.id == rows[3].id and payment.taken_back == 5000
    assert [r.void_reason for r in rows[:3]] == ["remboursement de 20,00\xa0€", "litige perdu de 30,00\xa0€", "litige perdu de 30,00\xa0€"]
    assert list(keys) == [f"annual-receipt:{first.id}"] + [f"annual-receipt:{r.id}:voided" for r in rows[:3]]
    assert len(last_view.replaces) == 2  # the one-off receipts stay named by the year's last annual receipt


def _paid_invoice(gift, n: int, when: dt.datetime) -> dict:
    return {"id": f"in_late_{gift.id}_{n}", "object": "invoice", "status": "paid", "amount_paid": gift.amount, "currency": "eur",
            "billing_reason": "subscription_cycle", "status_transitions": {"paid_at": calendar.timegm(when.timetuple())},
            "parent": {"type": "subscription_details", "subscription_details": {
                "subscription": gift.stripe_subscription_id, "metadata": {"purpose": recurring.PURPOSE}}},
            "payments": {"object": "list", "data": [{"status": "paid", "payment": {"type": "payment_intent",
                                                                                    "payment_intent": f"pi_late_{gift.id}_{n}"}}]}}


async def test_a_gift_of_the_year_paid_after_its_annual_receipt_is_added_to_it(sessions, world):
    campaign = await make_campaign(sessions, world, slug="atelier-velo")
    made = await pledge(sessions, campaign.id, amount="15", email="ana@example.org")
    async with transaction(sessions) as session:
        gift = await recurring_gift(session, world, email="ana@example.org", name="Ana Martin", amount=2000)
        instalment(session, gift, 1, dt.datetime(YEAR, 11, 5, 9))
    async with transaction(sessions) as session:
        (first,) = await annual.issue_year(session, YEAR, now=JANUARY)
    assert first.amount == 2000
    async with transaction(sessions) as session:  # December's instalment: its webhook after January's job
        await recurring.apply_invoice(session, "invoice.paid", _paid_invoice(gift, 12, dt.datetime(YEAR, 12, 5, 9)), 1)
        await recurring.apply_invoice(session, "invoice.paid", _paid_invoice(gift, 12, dt.datetime(YEAR, 12, 5, 9)), 1)  # again
    async with transaction(sessions) as session:  # and a one-off gift of 31 December, late too
        late = await _one_off(session, world, email="ana@example.org", amount=1000, when=dt.datetime(YEAR, 12, 31, 15), receipt=False)
        await service.thank(session, late)
    async with transaction(sessions) as session:  # a campaign gift of the year, confirmed late
        december = dt.datetime(YEAR, 12, 20, 9)
        await settle.mark_paid(session, made.id, payment_intent_id="pi_pledge_late", now=JANUARY, paid_at=december)
    async with sessions() as session:
        rows = (await session.scalars(select(TaxReceipt).where(TaxReceipt.org_id == world.org_id).order_by(TaxReceipt.id))).all()
        corrected = await session.scalar(select(Email).where(Email.dedupe_key == f"annual-receipt:{first.id}:voided"))
        thanks = await session.scalar(select(Email).where(Email.dedupe_key == f"payment:{late.id}:receipt"))
    annuals = [(r.revision, r.amount, r.voided_at is None) for r in rows if r.annual_year == YEAR]
    assert annuals == [(1, 2000, False), (2, 4000, False), (3, 5000, False), (4, 6500, True)]
    assert [r for r in rows if r.annual_year is None] == []  # no receipt of their own: the annual one states them
    assert [r.void_reason for r in rows[:3]] == ["ajout de 20,00\xa0€", "ajout de 10,00\xa0€", "ajout de 15,00\xa0€"]
    assert "reçu fiscal corrigé" in corrected.subject and "nous est parvenu après" in corrected.body_text
    assert "reçu fiscal n°" not in thanks.body_text.lower()
