"""Process heartbeats: who is alive, so that a dead process's leases are taken at once.

A process that leases webhook events (the worker; a web process that drains them) runs a
:class:`Heartbeat`: its row in ``process_heartbeats`` is written every ``HEARTBEAT_SECONDS``
and deleted on a clean stop. The leases it takes carry its id (:func:`current`). A process is
known dead when its row is gone, when it has not beaten for ``HEARTBEAT_STALE_SECONDS``, or —
found by any process of the same host — when its pid no longer exists (a ``kill -9``): its row
is then deleted at once (:func:`reap`), and webhooks.inbox.claim takes its events again.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import secrets
import socket

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from funding.db import dialect_insert, transaction, utcnow
from funding.db import session_factory as _session_factory
from funding.ops.models import ProcessHeartbeat

log = logging.getLogger("funding.ops")
HOST = socket.gethostname()[:64]
_LIVE: dict[str, Heartbeat] = {}  # this process's running heartbeats, by id, newest last


def current() -> Heartbeat | None:
    """The heartbeat a lease taken now records: this process's, if it runs one (else None, and
    the lease only ends when it runs out)."""
    return next(reversed(_LIVE.values()), None)


def alive_since(stale_seconds: float) -> dt.datetime:
    return utcnow() - dt.timedelta(seconds=stale_seconds)


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, another user's
        return False
    return False


async def reap(session: AsyncSession, stale_seconds: float) -> list[str]:
    """Delete the rows of processes known dead: stale, or of this host with their pid gone.
    Returns their ids (their leases are orphaned from now on)."""
    rows = (await session.execute(select(ProcessHeartbeat.id, ProcessHeartbeat.host, ProcessHeartbeat.pid,
                                         ProcessHeartbeat.beat_at))).all()
    limit = alive_since(stale_seconds)
    dead = [r.id for r in rows if r.id not in _LIVE and (r.beat_at < limit or (r.host == HOST and _pid_gone(r.pid)))]
    if dead:
        await session.execute(delete(ProcessHeartbeat).where(ProcessHeartbeat.id.in_(dead)))
        log.warning("processes known dead, their leases released: %s", ", ".join(dead))
    return dead


class Heartbeat:
    """This process's heartbeat, beating in a task of its own from :meth:`start` to :meth:`stop`."""

    def __init__(self, engine: AsyncEngine, kind: str, *, every: float = 5.0, stale: float = 30.0):
        self.sessions = _session_factory(engine)
        self.kind, self.every, self.stale = kind, every, stale
        self.id = f"{HOST}:{os.getpid()}:{secrets.token_hex(4)}"[:80]
        self.task: asyncio.Task[None] | None = None

    async def beat(self) -> None:
        now = utcnow()
        async with transaction(self.sessions) as session:
            insert = dialect_insert(session.bind.dialect.name if session.bind else "sqlite")
            await session.execute(insert(ProcessHeartbeat).values(
                id=self.id, kind=self.kind, host=HOST, pid=os.getpid(), started_at=now, beat_at=now)
                .on_conflict_do_update(index_elements=["id"], set_={"beat_at": now}))
            await reap(session, self.stale)

    async def start(self) -> None:
        """The first beat is written before this returns (a lease is never taken by an unknown process)."""
        try:
            await self.beat()
            _LIVE[self.id] = self
        except Exception as exc:  # the database is away: leases wait for the first beat that is written
            log.warning("heartbeat not written: %s", exc)
        self.task = asyncio.create_task(self._run(), name=f"heartbeat-{self.kind}")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                await self.beat()
                _LIVE.setdefault(self.id, self)
            except Exception as exc:  # the database is away: try again next beat
                log.warning("heartbeat not written: %s", exc)

    async def stop(self) -> None:
        """Stop beating and delete the row; events still leased by this process are due again."""
        _LIVE.pop(self.id, None)
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        from funding.payments.models import EventStatus, StripeEvent

        try:
            async with transaction(self.sessions) as session:
                await session.execute(update(StripeEvent).where(StripeEvent.leased_by == self.id,
                                                                StripeEvent.status == EventStatus.PROCESSING)
                                      .values(lease_until=utcnow()))
                await session.execute(delete(ProcessHeartbeat).where(ProcessHeartbeat.id == self.id))
        except Exception as exc:
            log.warning("heartbeat row not removed (it goes stale): %s", exc)
