"""Issue 17: a plan change, a cancellation and its undo each email the member, once, however
Stripe tells us (our own call's answer, then its webhook; a webhook delivered twice)."""

from __future__ import annotations

from sqlalchemy import select

from funding.coworking.lifecycle import apply_subscription
from funding.db import transaction
from funding.mail.models import Email
from tests.support.coworking import MONTH, Story
from tests.support.stripe_objects import now
from tests.support.webhooks import deliver
from webhooks.processing import drain


async def mails(sessions, member) -> list[tuple[str, str]]:
    async with sessions() as session:
        rows = (await session.execute(select(Email.dedupe_key, Email.subject).where(Email.user_id == member.user_id)
                                      .order_by(Email.id))).all()
    return [(key.split(":", 2)[-1], subject) for key, subject in rows]


def kinds(rows) -> list[str]:
    return [key.split(":")[0] for key, _subject in rows]


async def test_a_plan_change_a_cancellation_and_its_undo_each_mail_the_member_once(engine, sessions, member, catalogue, gw,
                                                                                 fake):
    story = Story(fake, member, catalogue)
    first, _ = story.bill()
    await deliver(engine, story.evt("customer.subscription.created", story.sub), story.evt("invoice.paid", first))
    await drain(sessions, gw)
    assert kinds(await mails(sessions, member)) == ["welcome"]

    # The plan changes: our call's answer is applied first, then the webhook comes, twice (two events).
    story.sub["items"]["data"][0]["price"] = catalogue.prices["fixe"]
    story.set()
    async with transaction(sessions) as session:
        await apply_subscription(session, dict(story.sub), now() + 5)
    story.t = now() + 10  # later news is newer than our call's answer
    await deliver(engine, story.evt("customer.subscription.updated", dict(story.sub)),
                  story.evt("customer.subscription.updated", dict(story.sub)))
    await drain(sessions, gw)
    rows = await mails(sessions, member)
    assert kinds(rows) == ["welcome", "plan"]
    assert catalogue.plans["fixe"].name in rows[-1][1]

    # Cancelled at the period's end, twice told; then the cancellation undone, twice told.
    story.set(cancel_at_period_end=True, cancel_at=story.start + MONTH, canceled_at=now())
    await deliver(engine, story.evt("customer.subscription.updated", dict(story.sub)),
                  story.evt("customer.subscription.updated", dict(story.sub)))
    await drain(sessions, gw)
    story.set(cancel_at_period_end=False, cancel_at=None, canceled_at=None)
    await deliver(engine, story.evt("customer.subscription.updated", dict(story.sub)),
                  story.evt("customer.subscription.updated", dict(story.sub)))
    await drain(sessions, gw)
    assert kinds(await mails(sessions, member)) == ["welcome", "plan", "cancel", "resume"]

    # Cancelled again later: a new cancellation, a new email.
    story.set(cancel_at_period_end=True, cancel_at=story.start + MONTH, canceled_at=now() + 60)
    await deliver(engine, story.evt("customer.subscription.updated", dict(story.sub)))
    await drain(sessions, gw)
    assert kinds(await mails(sessions, member)) == ["welcome", "plan", "cancel", "resume", "cancel"]
