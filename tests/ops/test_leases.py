"""An event orphaned by a crash is taken again as soon as its process is known dead (issue 19),
not after the whole five-minute lease: the lease names the process, the process beats."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import sys
import textwrap

import pytest
from sqlalchemy import insert, select, update

from funding.db import transaction, utcnow
from funding.ops.heartbeat import Heartbeat
from funding.ops.models import ProcessHeartbeat
from funding.payments.models import EventStatus, StripeEvent
from tests.support.stripe_objects import charge, event
from tests.support.webhooks import deliver
from webhooks.inbox import claim

HOLDER = textwrap.dedent("""
    import asyncio, sys
    from funding.db import create_engine, session_factory, transaction
    from funding.ops.heartbeat import Heartbeat
    from webhooks.inbox import claim

    async def main(url):
        engine = create_engine(url)
        beat = Heartbeat(engine, "worker", every=0.5, stale=60)
        await beat.start()
        async with transaction(session_factory(engine)) as session:
            events = await claim(session, limit=10)
        print(beat.id, len(events), flush=True)
        await asyncio.sleep(3600)  # "processing": until killed

    asyncio.run(main(sys.argv[1]))
""")


@pytest.fixture
def database_url(pg_url):  # processes racing for leases: PostgreSQL
    return pg_url


async def _claim(sessions) -> list[StripeEvent]:
    async with transaction(sessions) as session:
        return list(await claim(session, limit=10))


async def test_events_of_a_worker_killed_mid_batch_are_taken_again_at_once(engine, sessions):
    await deliver(engine, *(event("charge.succeeded", charge(amount=1000 + n, txn=None)) for n in range(3)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    holder = await asyncio.create_subprocess_exec(sys.executable, "-c", HOLDER, engine.url.render_as_string(hide_password=False),
                                                  stdout=asyncio.subprocess.PIPE, env=env)
    try:
        assert holder.stdout is not None
        holder_id, claimed = (await asyncio.wait_for(holder.stdout.readline(), 60)).decode().split()
        assert claimed == "3"
        me = Heartbeat(engine, "worker", stale=60)
        await me.start()
        try:
            assert await _claim(sessions) == []  # alive, beating: its lease holds
            holder.send_signal(signal.SIGKILL)  # kill -9: no clean stop, its row stays behind
            await asyncio.wait_for(holder.wait(), 10)
            again = await _claim(sessions)  # at once, not five minutes later: its pid is gone
            assert len(again) == 3 and {e.attempts for e in again} == {2} and {e.leased_by for e in again} == {me.id}
            async with sessions() as session:
                assert await session.get(ProcessHeartbeat, holder_id) is None
        finally:
            await me.stop()
        async with sessions() as session:  # a clean stop gives its leases back and removes its row
            assert (await session.scalars(select(StripeEvent.lease_until))).all() and \
                all(u <= utcnow() for u in (await session.scalars(select(StripeEvent.lease_until))).all())
            assert await session.get(ProcessHeartbeat, me.id) is None
    finally:
        if holder.returncode is None:
            holder.kill()
            await holder.wait()


async def test_a_process_on_another_host_is_dead_once_its_heartbeat_is_stale(engine, sessions):
    await deliver(engine, event("charge.succeeded", charge(amount=1000, txn=None)),
                  event("charge.succeeded", charge(amount=2000, txn=None)))
    now = utcnow()
    async with transaction(sessions) as session:
        for name, beat in (("other-host:1:aaaa", now), ("other-host:2:bbbb", now - dt.timedelta(seconds=120))):
            await session.execute(insert(ProcessHeartbeat).values(id=name, kind="worker", host="other-host", pid=1,
                                                                  started_at=beat, beat_at=beat))
        ids = (await session.scalars(select(StripeEvent.id).order_by(StripeEvent.id))).all()
        for event_id, name in zip(ids, ("other-host:1:aaaa", "other-host:2:bbbb"), strict=True):
            await session.execute(update(StripeEvent).where(StripeEvent.id == event_id).values(
                status=EventStatus.PROCESSING, lease_until=now + dt.timedelta(minutes=5), leased_by=name, attempts=1))
    me = Heartbeat(engine, "worker", stale=30)
    await me.start()
    try:
        taken = await _claim(sessions)
    finally:
        await me.stop()
    assert [e.id for e in taken] == [ids[1]]  # the stale one's only; the one beating keeps its lease


async def test_without_a_heartbeat_a_lease_lasts_its_five_minutes(engine, sessions):
    """A process that runs no heartbeat (a command, a test) records no holder: nobody can take
    its events early, whatever the heartbeats of others say."""
    await deliver(engine, event("charge.succeeded", charge(amount=1000, txn=None)))
    first = await _claim(sessions)
    assert len(first) == 1 and first[0].leased_by is None
    me = Heartbeat(engine, "worker")
    await me.start()
    try:
        assert await _claim(sessions) == []
    finally:
        await me.stop()
