"""A payment, a desk checkout or a recurring gift left ``unknown`` by its Checkout Session call
does not stay unknown: once the sweep has ended the call (issue 19's "unknown outcomes always
end"), the row follows — the session found at Stripe: open, with its id, for its webhooks to finish;
nothing: expired, since nobody ever had the page. A call still unknown, or raised to staff, waits."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from funding.auth.service import create_user
from funding.coworking.jobs import end_unknown as end_coworking
from funding.coworking.models import Checkout, Member, Plan, PlanPrice
from funding.db import transaction, utcnow
from funding.donations.jobs import end_unknown as end_gifts
from funding.donations.models import GiftInterval, RecurringGift
from funding.payments.jobs import end_unknown as end_payments
from funding.payments.models import Payment, RequestStatus, StripeRequest
from funding.worker import jobs


async def _payment(session, world) -> tuple[int, str]:
    row = Payment(org_id=world.org_id, site_id=world.site_id, purpose="donation", amount=2500, currency="EUR",
                  description="Don", status="unknown")
    session.add(row)
    await session.flush()
    return row.id, f"payment:{row.id}"


async def _gift(session, world) -> tuple[int, str]:
    row = RecurringGift(org_id=world.org_id, site_id=world.site_id, amount=1000, currency="EUR", interval=GiftInterval.MONTH,
                        email="don@example.org", name="Camille", status="unknown")
    session.add(row)
    await session.flush()
    return row.id, f"recurring-gift:{row.id}"


async def _checkout(session, world) -> tuple[int, str]:
    user = await create_user(session, email=f"membre-{utcnow().timestamp()}@example.org", name="Julie", role="member",
                             org_id=world.org_id)
    plan = Plan(site_id=world.site_id, code=f"flex-{user.id}", name="Poste nomade", kind="workspace", interval="month",
                price_ht=15000, vat_rate=200, account="706")
    member = Member(user_id=user.id, site_id=world.site_id, org_id=world.org_id)
    session.add_all([plan, member])
    await session.flush()
    price = PlanPrice(plan_id=plan.id, seq=1, amount=18000, price_ht=15000, vat_rate=200, currency="EUR", interval="month")
    session.add(price)
    await session.flush()
    row = Checkout(member_id=member.id, plan_id=plan.id, price_id=price.id, status="unknown")
    session.add(row)
    await session.flush()
    return row.id, f"coworking-checkout:{row.id}"


KINDS = {"payment": (_payment, Payment, end_payments), "gift": (_gift, RecurringGift, end_gifts),
         "checkout": (_checkout, Checkout, end_coworking)}


def _request(ref: str, n: int, status: str, *, attempt: int = 1, stripe_id: str | None = None, raised: bool = False) -> StripeRequest:
    return StripeRequest(ref=ref, resource="checkout.sessions", attempt=attempt, idempotency_key=f"k-{ref}-{attempt}-{n}",
                         params="{}", status=status, stripe_id=stripe_id, raised_at=utcnow() if raised else None)


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_a_row_left_unknown_follows_its_checkout_call_once_the_sweep_has_ended_it(sessions, settings, world, kind):
    make, model, job = KINDS[kind]
    async with transaction(sessions) as session:
        found, found_ref = await make(session, world)
        failed, failed_ref = await make(session, world)
        waiting, waiting_ref = await make(session, world)
        raised, raised_ref = await make(session, world)
        retried, retried_ref = await make(session, world)
        session.add_all([
            _request(found_ref, 1, RequestStatus.SUCCEEDED, stripe_id=f"cs_test_found_{kind}"),
            _request(failed_ref, 2, RequestStatus.FAILED),
            _request(waiting_ref, 3, RequestStatus.UNKNOWN),
            _request(raised_ref, 4, RequestStatus.UNKNOWN, raised=True),
            # the first attempt failed, the sweep made it again under the next key: the last attempt counts
            _request(retried_ref, 5, RequestStatus.FAILED),
            _request(retried_ref, 6, RequestStatus.SUCCEEDED, attempt=2, stripe_id=f"cs_test_retried_{kind}"),
        ])
    assert await job(sessions, settings, None) == 3
    assert await job(sessions, settings, None) == 0  # once
    async with sessions() as session:
        rows = {r.id: (str(r.status), r.checkout_session_id)
                for r in (await session.scalars(select(model).where(model.id.in_([found, failed, waiting, raised, retried])))).all()}
    assert rows == {found: ("open", f"cs_test_found_{kind}"), failed: ("expired", None), waiting: ("unknown", None),
                    raised: ("unknown", None), retried: ("open", f"cs_test_retried_{kind}")}


async def test_the_worker_runs_them_after_the_sweep():
    names = [name for name, _job in jobs(None)]
    sweep = names.index("unknown Stripe requests")
    assert all(names.index(n) > sweep for n in ("payments left unknown", "recurring gifts left unknown",
                                                 "coworking checkouts left unknown"))
