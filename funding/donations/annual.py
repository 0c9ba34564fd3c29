"""One tax receipt per donor and year for their gifts (cerfa 11580, or 16216 for a company),
issued in January for the year before to every donor who gave by recurring gift that year, in
the series of every receipt (gap-free per organisation and year), emailed with its PDF.

Its amount is what remains given of the donor's gifts paid in that year (Paris days) to the
organisation: their recurring instalments and their one-off gifts (on /soutenir, and the gifts
to its campaigns), refunds and lost disputes taken off; its date the last gift's; its donor the
latest recurring gift's (name, address, company).

The policy for one-off gifts (a *reçu récapitulatif annuel*, which annuls and replaces): a
one-off gift gets its own receipt when paid, at once, as every donor's does; in January the
annual receipt takes it in, and the one-off receipts of that year are voided with it
(``replaced_by_id`` names the annual receipt; the email and the PDF list them), so the donor
declares one receipt, and no gift is receipted twice. A donor who never gave by recurring gift
keeps their one-off receipts: no annual one.

After the annual receipt, the year's sum is kept true (``refresh``): an instalment or a one-off
gift of that year paid late (its webhook after January's job) gets no receipt of its own; a
refund or a lost dispute of any of its gifts voids the annual receipt, and what remains given
gets a new one (the donor is told, with it).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from sqlalchemy import case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from funding.campaigns import receipt_pdf, receipts
from funding.campaigns.models import Campaign, Nature, Pledge, PledgeStatus, TaxReceipt
from funding.clock import PARIS, local_day, paris_today
from funding.db import Sessions, must_get, transaction, utcnow
from funding.donations.models import RecurringGift, RecurringGiftPayment
from funding.mail.compose import recipient_locale, recipient_locales, render
from funding.mail.service import enqueue, enqueue_many
from funding.orgs.models import Organisation
from funding.payments.models import Payment, PaymentPurpose, PaymentStatus

BATCH = 500  # donors per transaction


def year_bounds(year: int) -> tuple[dt.datetime, dt.datetime]:
    """[1 January, 1 January next) of ``year`` in Paris, as naive UTC (how times are stored)."""
    def utc(day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(), PARIS).astimezone(dt.UTC).replace(tzinfo=None)

    return utc(dt.date(year, 1, 1)), utc(dt.date(year + 1, 1, 1))


@dataclass
class DonorYear:
    org_id: int
    email: str
    total: int
    currency: str
    last_paid_at: dt.datetime
    gift: RecurringGift  # the latest: whose name, address and company the receipt states
    one_offs: int = 0  # of ``total``: what remains given of the year's one-off gifts


async def donors_of_year(session: AsyncSession, year: int, *, limit: int | None = None,
                         donor: tuple[int, str] | None = None) -> list[DonorYear]:
    """Donors of organisations of general interest with instalments paid in ``year`` and no
    annual receipt in force for it yet (``donor``: this (organisation, address) only, receipt
    or not), with what remains given once refunds and lost disputes are taken off.

    The donors that have their receipt are read apart and left out here, not by a correlated
    NOT EXISTS: while January's job fills the receipts, the planner's statistics lag behind
    and it chose a nested loop over every receipt for each donor (quadratic; the bench saw it)."""
    start, end = year_bounds(year)
    email = func.lower(RecurringGift.email)
    query = (select(RecurringGift.org_id, email, RecurringGiftPayment.currency,
                    func.sum(RecurringGiftPayment.amount - RecurringGiftPayment.amount_refunded),
                    func.max(RecurringGiftPayment.paid_at), func.max(RecurringGift.id))
             .join(RecurringGift, RecurringGift.id == RecurringGiftPayment.gift_id)
             .join(Organisation, Organisation.id == RecurringGift.org_id)
             .where(RecurringGiftPayment.paid_at >= start, RecurringGiftPayment.paid_at < end, Organisation.general_interest)
             .group_by(RecurringGift.org_id, email, RecurringGiftPayment.currency)
             .order_by(RecurringGift.org_id, email))
    done: set[tuple[int, str]] = set()
    if donor is not None:
        query = query.where(RecurringGift.org_id == donor[0], email == donor[1].lower())
    else:
        done = {(org_id, address) for org_id, address in (await session.execute(
            select(TaxReceipt.org_id, TaxReceipt.donor_email).where(TaxReceipt.annual_year == year,
                                                                   TaxReceipt.voided_at.is_(None)))).all()}
    rows = [r for r in (await session.execute(query)).all() if (r[0], r[1]) not in done][:limit]
    gifts = {g.id: g for g in (await session.scalars(select(RecurringGift).where(RecurringGift.id.in_([r[5] for r in rows])))).all()}
    found = [DonorYear(r[0], r[1], int(r[3]), r[2], r[4], gifts[r[5]]) for r in rows]
    one_offs = await one_offs_of_year(session, year, {(d.org_id, d.email) for d in found})
    for each in found:
        given, last = one_offs.get((each.org_id, each.email, each.currency), (0, None))
        each.total += given
        each.one_offs = given
        if last is not None and last > each.last_paid_at:
            each.last_paid_at = last
    return found


async def one_offs_of_year(session: AsyncSession, year: int, donors: set[tuple[int, str]]) -> dict[tuple[int, str, str], tuple[int, dt.datetime]]:
    """What remains given of the one-off gifts paid in ``year`` by these (organisation, address)
    donors — gifts on /soutenir and gifts to campaigns — and the last one's time, per currency.
    Two statements whatever the number of donors."""
    if not donors:
        return {}
    start, end = year_bounds(year)
    orgs = sorted({org_id for org_id, _ in donors})
    emails = sorted({email for _, email in donors})
    taken = case((Payment.amount_refunded > Payment.taken_back, Payment.amount_refunded), else_=Payment.taken_back)
    pay_email = func.lower(Payment.email)
    payments = (select(Payment.org_id, pay_email, Payment.currency, func.sum(Payment.amount - taken), func.max(Payment.paid_at))
                .where(Payment.purpose == PaymentPurpose.DONATION, Payment.status == PaymentStatus.PAID,
                       Payment.paid_at >= start, Payment.paid_at < end, Payment.org_id.in_(orgs), pay_email.in_(emails))
                .group_by(Payment.org_id, pay_email, Payment.currency))
    pledge_email = func.lower(Pledge.email)
    pledges = (select(Campaign.org_id, pledge_email, Pledge.currency, func.sum(Pledge.amount - Pledge.amount_refunded),
                      func.max(Pledge.paid_at))
               .join(Campaign, Campaign.id == Pledge.campaign_id)
               .where(Pledge.nature == Nature.GIFT, Pledge.status == PledgeStatus.PAID, Pledge.paid_at >= start,
                      Pledge.paid_at < end, Campaign.org_id.in_(orgs), pledge_email.in_(emails))
               .group_by(Campaign.org_id, pledge_email, Pledge.currency))
    sums: dict[tuple[int, str, str], tuple[int, dt.datetime]] = {}
    for query in (payments, pledges):
        for org_id, email, currency, given, last in (await session.execute(query)).all():
            if (org_id, email) not in donors:
                continue
            before, before_last = sums.get((org_id, email, currency), (0, last))
            sums[(org_id, email, currency)] = (before + int(given or 0), max(before_last, last))
    return sums


REPLACED = "remplacé par le reçu annuel récapitulatif"


async def take_in_one_offs(session: AsyncSession, year: int, annual_receipts: list[TaxReceipt], *,
                           now: dt.datetime | None = None) -> dict[int, list[str]]:
    """Void the one-off receipts in force of ``year``'s gifts of these annual receipts' donors,
    each naming its donor's annual receipt (one statement): the codes voided, per annual receipt."""
    if not annual_receipts:
        return {}
    annual = aliased(TaxReceipt)
    annual_id = (select(annual.id).where(annual.org_id == TaxReceipt.org_id, annual.donor_email == func.lower(TaxReceipt.donor_email),
                                         annual.annual_year == year, annual.currency == TaxReceipt.currency,
                                         annual.voided_at.is_(None))
                 .scalar_subquery())
    rows = (await session.execute(
        update(TaxReceipt)
        .where(TaxReceipt.annual_year.is_(None), TaxReceipt.voided_at.is_(None),
               TaxReceipt.paid_on >= dt.date(year, 1, 1), TaxReceipt.paid_on <= dt.date(year, 12, 31),
               TaxReceipt.org_id.in_(sorted({r.org_id for r in annual_receipts})),
               func.lower(TaxReceipt.donor_email).in_(sorted({r.donor_email.lower() for r in annual_receipts})),
               annual_id.is_not(None))
        .values(voided_at=now or utcnow(), void_reason=REPLACED, replaced_by_id=annual_id)
        .returning(TaxReceipt.replaced_by_id, TaxReceipt.year, TaxReceipt.number)
        .execution_options(synchronize_session=False))).all()
    taken: dict[int, list[str]] = {}
    for replaced_by, series, number in sorted(rows, key=lambda r: (r[1], r[2])):
        taken.setdefault(int(replaced_by or 0), []).append(f"{series}-{number:06d}")
    return taken


def receipt_gift(donor: DonorYear, year: int) -> receipts.Gift:
    gift = donor.gift
    company = gift.company_name or None
    return receipts.Gift(org_id=donor.org_id, pledge_id=None, payment_id=None, campaign_id=None,
                         donor_name=company or gift.name, donor_address=gift.donor_address or "", donor_email=donor.email,
                         donor_siren=gift.company_siren if company else None, amount=donor.total, currency=donor.currency,
                         paid_at=donor.last_paid_at, annual_year=year)


async def issue_year(session: AsyncSession, year: int, *, now: dt.datetime | None = None,
                     limit: int | None = BATCH) -> list[TaxReceipt]:
    """Issue (and email) the annual receipts still due for ``year``, at most ``limit`` donors."""
    donors = await donors_of_year(session, year, limit=limit)
    issued = await receipts.issue_annual_many(session, [receipt_gift(donor, year) for donor in donors], now=now)
    replaced = await take_in_one_offs(session, year, issued, now=now)
    names = {(d.org_id, d.email): d.gift.name for d in donors}
    locales = await recipient_locales(session, [receipt.donor_email for receipt in issued])
    await enqueue_many(session, [{
        "to": receipt.donor_email, "org_id": receipt.org_id, "dedupe_key": f"annual-receipt:{receipt.id}",
        **render("donations/annual_receipt", locales.get(receipt.donor_email.lower(), "fr"), name=names[(receipt.org_id, receipt.donor_email)],
                 year=year, amount=receipt.amount, currency=receipt.currency, code=receipts.receipt_code(receipt),
                 company=receipt.donor_siren is not None, replaces=replaced.get(receipt.id, [])),
        "attachments": [receipt_pdf.attachment(receipt.id)]} for receipt in issued])
    return issued


async def taken_back(session: AsyncSession, payment_intent_id: str, total: int, *, reason: str) -> TaxReceipt | None:
    """Stripe's total taken back of an instalment (refunds, a lost dispute; it only grows): kept
    on the instalment; if its year's annual receipt is issued, it is voided and what remains given
    that year gets a new one (the donor is told, with it). Once per total."""
    instalment = await session.scalar(select(RecurringGiftPayment).where(RecurringGiftPayment.payment_intent_id == payment_intent_id))
    if instalment is None or total <= instalment.amount_refunded:
        return None
    total = min(total, instalment.amount)
    await session.execute(update(RecurringGiftPayment).where(RecurringGiftPayment.id == instalment.id,
                                                             RecurringGiftPayment.amount_refunded < total)
                          .values(amount_refunded=total))
    gift = await must_get(session, RecurringGift, instalment.gift_id)
    return await refresh(session, gift.org_id, gift.email, local_day(instalment.paid_at).year, reason=reason)


async def in_force(session: AsyncSession, org_id: int, email: str, year: int) -> TaxReceipt | None:
    """The donor's annual receipt in force for ``year``'s gifts, if January's job issued it."""
    return await session.scalar(select(TaxReceipt).where(TaxReceipt.org_id == org_id, TaxReceipt.donor_email == email.strip().lower(),
                                                         TaxReceipt.annual_year == year, TaxReceipt.voided_at.is_(None)))


async def issued_for(session: AsyncSession, donors: list[tuple[int, str, dt.datetime | None]]) -> set[tuple[int, str, int]]:
    """Of these (organisation, address, time paid) gifts, the (organisation, address, year) whose
    annual receipt is in force already (one statement): a gift paid late gets no receipt of its
    own, the annual receipt takes it in (``refresh``)."""
    wanted = {(org_id, email.strip().lower(), local_day(paid_at).year) for org_id, email, paid_at in donors if email and paid_at}
    if not wanted:
        return set()
    rows = (await session.execute(select(TaxReceipt.org_id, TaxReceipt.donor_email, TaxReceipt.annual_year).where(
        TaxReceipt.org_id.in_(sorted({w[0] for w in wanted})), TaxReceipt.donor_email.in_(sorted({w[1] for w in wanted})),
        TaxReceipt.annual_year.in_(sorted({w[2] for w in wanted})), TaxReceipt.voided_at.is_(None)))).all()
    return {(int(r[0]), r[1], int(r[2] or 0)) for r in rows} & wanted


ADDED = "ajout"  # the reason of a refresh for a gift of the year paid after its annual receipt


async def refresh(session: AsyncSession, org_id: int, email: str, year: int, *, reason: str) -> TaxReceipt | None:
    """Keep an issued annual receipt equal to what remains given in its year (``reason``: why it
    may have changed: ``ajout`` for a gift paid late, else the take-back's words): voided and
    reissued for the new sum (the year's one-off receipts taken in), the donor told once per
    change. None when January's job has not issued it (it will sum them) or nothing remains."""
    email = email.strip().lower()
    current = await in_force(session, org_id, email, year)
    if current is None:
        return None
    found = await donors_of_year(session, year, donor=(org_id, email))
    donor = found[0] if found else None
    remaining = donor.total if donor is not None else 0
    if remaining == current.amount:
        await take_in_one_offs(session, year, [current])
        return current
    added = remaining > current.amount
    why = receipts.void_reason(ADDED if added else reason, abs(remaining - current.amount), current.currency)
    replaced: TaxReceipt | None = None
    if donor is not None and remaining > 0:
        replaced = await receipts.void_and_reissue_annual(session, receipt_gift(donor, year), why)
    else:
        await session.execute(update(TaxReceipt).where(TaxReceipt.id == current.id, TaxReceipt.voided_at.is_(None))
                              .values(voided_at=utcnow(), void_reason=why[:200]))
    taken = await take_in_one_offs(session, year, [replaced]) if replaced is not None else {}
    name = donor.gift.name if donor is not None else current.donor_name
    await enqueue(session, to=email, org_id=org_id, dedupe_key=f"annual-receipt:{current.id}:voided",
                  **render("donations/annual_voided", await recipient_locale(session, email=email), name=name, year=year,
                           amount=abs(remaining - current.amount), currency=current.currency, reason=reason, added=added,
                           code=receipts.receipt_code(current),
                           new_code=receipts.receipt_code(replaced) if replaced is not None else None,
                           new_amount=replaced.amount if replaced is not None else None,
                           replaces=taken.get(replaced.id, []) if replaced is not None else []),
                  attachments=[receipt_pdf.attachment(replaced.id)] if replaced is not None else None)
    return replaced


QUIET_SECONDS = 3600.0  # once a round finds nothing due, the job looks again an hour later (the worker polls every few seconds)
QUIET = {"until": 0.0}  # this process: when the job may look again


async def january(sessions: Sessions, settings, gateway) -> int:
    """The worker's job: in January, the receipts of last year's recurring gifts still due (by batches)."""
    today = paris_today()
    if today.month != 1 or time.monotonic() < QUIET["until"]:
        return 0
    async with transaction(sessions) as session:
        issued = len(await issue_year(session, today.year - 1, now=utcnow()))
    if issued == 0:
        QUIET["until"] = time.monotonic() + QUIET_SECONDS
    return issued
