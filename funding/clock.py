"""The association's calendar. Instants are stored as naive UTC (``funding.db.utcnow``); a *day*
(an entry's date, an invoice's, "today" on a page or in a default) is a day in Paris, whatever
the server's own time zone: at 23:30 UTC in winter it is already tomorrow in Thiers."""

from __future__ import annotations

import asyncio
import datetime as dt
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")


def local_day(moment: dt.datetime) -> dt.date:
    """The Paris day of an instant (naive values are UTC, as stored)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(PARIS).date()


def local_date(unix: int) -> dt.date:
    """The Paris day of a Unix timestamp (Stripe's ``created``, ``period_end``…)."""
    return dt.datetime.fromtimestamp(int(unix), PARIS).date()


def paris_today(now: dt.datetime | None = None) -> dt.date:
    """Today in Paris (or the Paris day of ``now``)."""
    return local_day(now or dt.datetime.now(dt.UTC))


async def wait_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait up to ``seconds`` for ``event``; True if it came. Use this, not ``asyncio.wait_for``: on
    Python 3.11 wait_for drops a cancellation that arrives as the event fires (CPython gh-86296), and a
    background loop that swallowed its cancel makes shutdown wait for ever."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return event.is_set()
    return True
