"""/healthz (liveness) and /readyz (readiness), in JSON.

/healthz answers 200 while the process serves requests, and says what it sees of the database
through a connection of its own (not the pool's: a full pool is not a dead database):
``database`` is ``ok`` or ``unreachable``; ``pool`` is ``ok`` or ``full`` (every connection of
the process's pool checked out), with its counts.

/readyz answers 200 only when this process can do its work: the database reachable, the
migrations at head, a worker's heartbeat recent, the pool not full; 503 otherwise, saying what
is wrong. It also counts the inbox's backlog (events due or in flight) and its dead letters.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from funding.db import utcnow
from funding.migrate import current_revisions, head_revisions
from funding.ops.models import ProcessHeartbeat
from funding.payments.models import EventStatus, StripeEvent

PROBE_TIMEOUT = 3.0


def pool_state(engine: AsyncEngine) -> dict[str, Any]:
    """The process's pool: its size, what is checked out, and whether every connection is."""
    pool = engine.pool
    size = getattr(pool, "size", lambda: 0)()
    out = getattr(pool, "checkedout", lambda: 0)()
    overflow = getattr(pool, "_max_overflow", 0)
    full = bool(size) and out >= size + max(overflow, 0)
    return {"state": "full" if full else "ok", "size": size, "max_overflow": overflow, "checked_out": out}


async def _probe(request: Request) -> tuple[str, Any]:
    """(``ok``, revisions) or (``unreachable``, the reason), on a connection outside the pool."""
    probe: AsyncEngine = request.app.state.probe_engine
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            async with probe.connect() as conn:
                await conn.execute(text("SELECT 1"))
                return "ok", await current_revisions(conn)
    except Exception as exc:  # unreachable, refused, too slow
        return "unreachable", type(exc).__name__


async def healthz(request: Request) -> Response:
    database, _ = await _probe(request)
    return JSONResponse({"status": "ok", "database": database, "pool": pool_state(request.app.state.engine)})


async def readyz(request: Request) -> Response:
    settings = request.app.state.settings
    database, revisions = await _probe(request)
    body: dict[str, Any] = {"database": database, "pool": pool_state(request.app.state.engine)}
    problems = []
    if database != "ok":
        problems.append("database unreachable")
    else:
        heads = head_revisions()
        if revisions != heads:
            at, want = ", ".join(sorted(revisions or ())) or "nothing", ", ".join(sorted(heads))
            body["migrations"] = f"at {at}, head is {want}"
            problems.append("migrations not at head")
        else:
            body["migrations"] = "current"
            async with asyncio.timeout(PROBE_TIMEOUT), request.app.state.probe_engine.connect() as conn:
                body.update(await _counts(conn, settings.heartbeat_stale_seconds))
            if not body["worker"]["alive"]:
                problems.append(f"no worker heartbeat in the last {settings.heartbeat_stale_seconds:g} s")
    if body["pool"]["state"] == "full":
        problems.append("connection pool full")
    body["status"] = "error" if problems else "ok"
    if problems:
        body["problems"] = problems
    return JSONResponse(body, status_code=503 if problems else 200)


async def _counts(conn, stale_seconds: float) -> dict[str, Any]:
    last = await conn.scalar(select(func.max(ProcessHeartbeat.beat_at)).where(ProcessHeartbeat.kind == "worker"))
    alive = await conn.scalar(select(func.count()).select_from(ProcessHeartbeat).where(
        ProcessHeartbeat.kind == "worker", ProcessHeartbeat.beat_at >= utcnow() - dt.timedelta(seconds=stale_seconds)))
    by_status = dict((await conn.execute(select(StripeEvent.status, func.count()).where(
        StripeEvent.status.in_([EventStatus.PENDING, EventStatus.FAILED, EventStatus.PROCESSING, EventStatus.DEAD]))
        .group_by(StripeEvent.status))).all())
    backlog = sum(by_status.get(s, 0) for s in (EventStatus.PENDING, EventStatus.FAILED, EventStatus.PROCESSING))
    return {"worker": {"alive": alive, "last_heartbeat": last.isoformat() + "Z" if last else None},
            "inbox": {"backlog": backlog, "in_flight": by_status.get(EventStatus.PROCESSING, 0),
                      "dead_letters": by_status.get(EventStatus.DEAD, 0)}}


routes = [
    Route("/healthz", healthz, name="healthz"),
    Route("/readyz", readyz, name="readyz"),
]
