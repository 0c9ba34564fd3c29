"""Rate limits shared by every web process: fixed windows counted in the database.

Each action (``login``, ``join``, ``api``…) allows so many hits per key (an email address, a
client IP) per window of so many seconds. A hit is one upsert that returns the window's new
count; past the limit the request is refused with :class:`RateLimited` (429, ``Retry-After``:
the seconds until the window ends). The count is committed in its own transaction, before the
request's work, so a refused or failed request still counts and two web processes, or two
machines, share the same counters. Keys are stored as an HMAC under ``SECRET_KEY``: the table
holds neither addresses nor IPs.

Defaults are in :data:`DEFAULTS`; ``RATE_LIMITS`` changes them (``login=5/900,api=off``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
from collections.abc import Iterable

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from funding.db import Sessions, dialect_insert, dialect_of, rowcount, transaction, utcnow
from funding.errors import FundingError
from funding.i18n import ngettext
from funding.limits.models import RateCounter
from funding.limits.rules import DEFAULTS
from funding.settings import Settings


class RateLimited(FundingError):
    """Too many requests for one action and key: try again after ``retry_after`` seconds."""

    status = 429

    def __init__(self, retry_after: int):
        self.retry_after = max(1, int(retry_after))
        minutes = math.ceil(self.retry_after / 60)
        super().__init__(ngettext("Trop de demandes en peu de temps : réessayez dans %(num)s minute.",
                                  "Trop de demandes en peu de temps : réessayez dans %(num)s minutes.", minutes))

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


def rule(settings: Settings, action: str) -> tuple[int, int]:
    """(hits, seconds) for ``action``; hits 0: no limit."""
    for name, hits, seconds in settings.rate_limits:
        if name == action:
            return hits, seconds
    return DEFAULTS[action]


def key_hash(settings: Settings, action: str, key: str) -> str:
    return hmac.new(settings.secret_key.encode(), f"{action}\x00{key.strip().lower()}".encode(), hashlib.sha256).hexdigest()


def window_of(now: dt.datetime, seconds: int) -> dt.datetime:
    epoch = dt.datetime(1970, 1, 1)
    start = int((now - epoch).total_seconds()) // seconds * seconds
    return epoch + dt.timedelta(seconds=start)


async def count(session: AsyncSession, settings: Settings, action: str, key: str, *, now: dt.datetime) -> tuple[int, int, int]:
    """One hit for ``action`` and ``key`` in ``session``: (hits in the window, limit, seconds left)."""
    limit, seconds = rule(settings, action)
    if limit == 0:
        return 0, 0, 0
    start = window_of(now, seconds)
    table = RateCounter.__table__
    insert = dialect_insert(dialect_of(session))
    stmt = (insert(table).values(action=action, key_hash=key_hash(settings, action, key), window_start=start, hits=1)
            .on_conflict_do_update(index_elements=["action", "key_hash", "window_start"], set_={"hits": table.c.hits + 1})
            .returning(table.c.hits))
    hits = int((await session.execute(stmt)).scalar_one())
    left = math.ceil((start + dt.timedelta(seconds=seconds) - now).total_seconds())
    return hits, limit, left


async def hit(sessions: Sessions, settings: Settings, checks: Iterable[tuple[str, str]], *,
              now: dt.datetime | None = None) -> None:
    """Count one hit for each (action, key), in a transaction of its own; RateLimited if any
    is over its limit (every one is counted all the same, so the answer never depends on
    which key was over)."""
    now = now or utcnow()
    wait = 0
    async with transaction(sessions) as session:
        for action, key in checks:
            hits, limit, left = await count(session, settings, action, key, now=now)
            if limit and hits > limit:
                wait = max(wait, left)
    if wait:
        raise RateLimited(wait)


async def allowed(sessions: Sessions, settings: Settings, action: str, key: str, *, now: dt.datetime | None = None) -> bool:
    """Count one hit and say whether it is within the limit (for work done quietly, e.g. an email)."""
    try:
        await hit(sessions, settings, [(action, key)], now=now)
    except RateLimited:
        return False
    return True


async def sweep(sessions: Sessions, settings: Settings, *, now: dt.datetime | None = None) -> int:
    """Delete the windows that are over (the longest window of any action counts)."""
    now = now or utcnow()
    longest = max(max(seconds for _hits, seconds in DEFAULTS.values()),
                  max((seconds for _name, _hits, seconds in settings.rate_limits), default=0))
    async with transaction(sessions) as session:
        result = await session.execute(delete(RateCounter).where(RateCounter.window_start < now - dt.timedelta(seconds=longest)))
    return rowcount(result)


def client_ip(scope, settings: Settings) -> str:
    """The client's address: the ASGI peer, or, behind ``TRUSTED_PROXIES`` proxies, the address
    the outermost trusted one saw (X-Forwarded-For read from the right; what the client itself
    wrote on the left is never believed)."""
    peer = (scope.get("client") or ("unknown", 0))[0] or "unknown"
    if settings.trusted_proxies <= 0:
        return peer
    forwarded = []
    for name, value in scope.get("headers") or ():
        if name.lower() == b"x-forwarded-for":
            forwarded += [part.strip() for part in value.decode("latin-1").split(",") if part.strip()]
    if len(forwarded) >= settings.trusted_proxies:
        return forwarded[-settings.trusted_proxies]
    return peer  # fewer hops than proxies said: the header was not written by them
