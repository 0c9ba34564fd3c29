"""The till under a rush: the taps of one site that arrive together share one transaction.

Every sale line is chained under its site's head (funding.bar.till), so the tills of a site
take turns; what each turn cost was a whole transaction — lock the head, write the line, and
wait for the commit to reach the disk — and twenty tills queued behind one another's commits.
Here a process keeps, per site, the taps that arrive while a transaction is writing; the next
transaction writes all of them, in arrival order, under one head lock and one commit (a
*group commit*, as databases do for their own log). Nothing is weaker for it:

- each tap is answered only once the transaction holding its line has committed: a line the
  till was told about is durable, and a line is unalterable from the moment it is written
  (the database's triggers);
- lines are numbered and chained as before, one after the other, with no gap;
- each tap runs in its own savepoint: a refused tap (unknown product, the tab limit reached, a
  closed ticket) is refused alone and the others are written; should the transaction itself
  fail, each tap of the batch is tried again in its own transaction, so that one cannot fail
  another;
- the members of a batch are locked in id order before the head, as a single tap locks its
  member before the head: every process takes locks in one order, so none waits in a cycle.

An idle till pays nothing for this: a tap that finds no transaction running starts one at
once. Several processes still serialise on the head, each with its own batches.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from funding.auth.models import User
from funding.bar.till import BarError, Rung, ring_up
from funding.db import dialect_of, digits, transaction
from funding.i18n import get_locale, reset_locale, set_locale
from funding.orgs.models import Site
from funding.scoping import OrgScope, set_scope

log = logging.getLogger(__name__)


@dataclass
class Tap:
    site_id: int
    fields: dict[str, Any]
    locale: str
    done: asyncio.Future = field(repr=False)


class Tills:
    """The process's queue of taps, per site (``app.state.tills``)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]):
        self.sessions = sessions
        self.pending: dict[int, list[Tap]] = {}
        self.writing: dict[int, asyncio.Task] = {}
        self.batches = 0  # transactions committed (for the tests and the bench)

    async def ring(self, site_id: int, **fields: Any) -> Rung:
        """ring_up(…) for the site, answered once its line is committed; BarError if refused."""
        tap = Tap(site_id, fields, get_locale(), asyncio.get_running_loop().create_future())
        self.pending.setdefault(site_id, []).append(tap)
        if site_id not in self.writing:
            self.writing[site_id] = asyncio.create_task(self._drain(site_id))
        # A till that hangs up does not undo its tap: the line is written (and shown at the next
        # reload) whether or not the answer still has someone to reach.
        return await asyncio.shield(tap.done)

    async def _drain(self, site_id: int) -> None:
        try:
            while batch := self.pending.pop(site_id, None):
                await self._write(batch)
        finally:
            self.writing.pop(site_id, None)

    async def _write(self, batch: list[Tap]) -> None:
        outcomes: list[tuple[Tap, Rung | None, BaseException | None]] = []
        try:
            async with transaction(self.sessions) as session:
                site = await session.get(Site, batch[0].site_id)
                if site is None:
                    raise BarError("site inconnu")
                set_scope(session, OrgScope(frozenset({site.org_id})))
                await _lock_members(session, batch)
                for tap in batch:
                    token = set_locale(tap.locale)
                    try:
                        async with session.begin_nested():
                            outcomes.append((tap, await ring_up(session, site, **tap.fields), None))
                    except BarError as exc:
                        outcomes.append((tap, None, exc))
                    finally:
                        reset_locale(token)
            self.batches += 1
        except Exception as exc:
            if len(batch) > 1:  # one tap's trouble must not be the others': each on its own
                for tap in batch:
                    await self._write([tap])
                return
            if not isinstance(exc, BarError):
                log.exception("till: a tap could not be written")
            outcomes = [(batch[0], None, exc)]
        for tap, rung, error in outcomes:
            if tap.done.done():
                continue
            if error is not None:
                tap.done.set_exception(error)
            else:
                tap.done.set_result(rung)


async def _lock_members(session: AsyncSession, batch: list[Tap]) -> None:
    """The batch's members, locked in id order before the head (see the module)."""
    if dialect_of(session) == "sqlite":
        return  # one writer at a time there: the transaction's own lock orders everything
    ids = sorted({int(str(tap.fields.get("member_id"))) for tap in batch
                  if digits(str(tap.fields.get("member_id") or "")) and len(str(tap.fields["member_id"])) < 19})
    if len(ids) > 1:
        await session.execute(select(User.id).where(User.id.in_(ids)).order_by(User.id).with_for_update())


def tills(app) -> Tills:
    state = app.state
    queue = getattr(state, "tills", None)
    if queue is None:
        queue = state.tills = Tills(state.sessions)
    return queue
