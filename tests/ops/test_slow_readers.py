"""Slow readers cannot hold the database hostage (issue 19).

A real server (uvicorn, its own event loop in a thread) with a small pool: 40 export downloads
are asked for by raw sockets that never read their answer, then for a while (SLOW_READERS_SECONDS,
3 s here; the finding was about 30 s) the webhook endpoint and public pages are asked too. An
export used to stream from a pooled connection held until the client had read the last byte:
with a few stalled readers every connection was taken, webhooks got 503, pages 500 and
/healthz said the database was unreachable. Exports are now read whole first (spooled), then
sent at the client's pace.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import os
import socket
import time

import httpx
import itsdangerous
import pytest
from sqlalchemy import select

from funding.app import create_app
from funding.auth.models import User
from funding.db import transaction
from funding.ledger.service import EntryDraft, Line, post
from funding.settings import load_settings
from funding.stripe_gateway import sign_payload
from tests.support.db import TEST_SEAL_KEY
from tests.support.live import LiveServer, free_port
from tests.support.stripe_objects import charge, event
from tests.support.world import make_world

READERS = int(os.environ.get("SLOW_READERS", "40"))
SECONDS = float(os.environ.get("SLOW_READERS_SECONDS", "3"))
ACCOUNTS = ["512", "5115", "627", "706", "707", "741", "75411", "7542", "411", "445711"]
SECRET = "whsec_slow_readers_0123456789"


def _draft(org_id: int, site_id: int, n: int, day: dt.date) -> EntryDraft:
    amounts = [1000 + (n * 7 + i * 13) % 9000 for i in range(50)]
    lines = [Line(ACCOUNTS[i % 5], a) for i, a in enumerate(amounts)] + [Line(ACCOUNTS[5 + i % 5], -a) for i, a in enumerate(amounts)]
    return EntryDraft(org_id=org_id, site_id=site_id, journal="OD", entry_date=day, label=f"Écriture de charge n° {n} " + "x" * 150,
                      piece_ref=f"P{n:07d}", funding_source="crowdfunding", lines=lines, source_key=f"load:{n}")


def _cookie(secret_key: str, user: User) -> str:
    data = base64.b64encode(json.dumps({"uid": user.id, "gen": user.session_generation, "lang": "fr"}).encode())
    return itsdangerous.TimestampSigner(secret_key).sign(data).decode()


def _stall(port: int, path: str, cookie: str) -> socket.socket:
    """Ask for ``path`` and never read the answer (a tiny receive buffer, as a slow phone's)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: entrelab_session={cookie}\r\n\r\n".encode())
    return sock


async def test_stalled_export_downloads_leave_webhooks_and_pages_answering(pg_url, sessions):
    settings = load_settings({}, FUNDING_ENV="test", DATABASE_URL=pg_url, SECRET_KEY="slow-readers-secret-0123456789",
                             BASE_URL="http://127.0.0.1", LEDGER_SEAL_KEY=TEST_SEAL_KEY, STRIPE_WEBHOOK_SECRET=SECRET,
                             DATABASE_POOL_SIZE="3", DATABASE_MAX_OVERFLOW="0", DATABASE_POOL_TIMEOUT="2")
    world = await make_world(sessions)
    day = dt.date.today() - dt.timedelta(days=1)
    for start in range(0, 200, 50):  # 20,000 postings: a FEC of several MB, more than the sockets' buffers hold
        async with transaction(sessions) as session:
            await post(session, [_draft(world.org_id, world.site_id, n, day) for n in range(start, start + 50)])
    async with sessions() as session:
        accountant = await session.scalar(select(User).where(User.id == world.users["accountant"]))
    cookie = _cookie(settings.secret_key, accountant)
    port = free_port()
    path = f"/admin/exports/download?format=fec&org={world.siren}"
    stalled: list[socket.socket] = []
    statuses: dict[str, list[int]] = {"webhook": [], "home": [], "transparence": []}
    with LiveServer(create_app(settings, process_events=False), port) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            first = await client.get(path, headers={"cookie": f"entrelab_session={cookie}"})
            assert first.status_code == 200 and len(first.content) > 4_000_000, (first.status_code, len(first.content))
            for _ in range(READERS):
                stalled.append(await asyncio.to_thread(_stall, port, path, cookie))
            # Every download is read from the database in turn, then waits on its reader: the pool is
            # given back whole while forty clients still hold their answers unread.
            health, limit = {}, time.monotonic() + 90
            while time.monotonic() < limit:
                health = (await client.get("/healthz")).json()
                if health["pool"]["checked_out"] == 0:
                    break
                await asyncio.sleep(0.5)
            deadline, n = time.monotonic() + SECONDS, 0
            while time.monotonic() < deadline:
                n += 1
                body = json.dumps(event("charge.succeeded", charge(amount=1000, txn=None), event_id=f"evt_slow{n:05d}")).encode()
                r = await client.post("/webhooks/stripe", content=body,
                                      headers={"stripe-signature": sign_payload(body, SECRET), "content-type": "application/json"})
                statuses["webhook"].append(r.status_code)
                statuses["home"].append((await client.get("/")).status_code)
                statuses["transparence"].append((await client.get("/transparence")).status_code)
            for sock in stalled:
                sock.close()
    assert health["database"] == "ok" and health["pool"]["checked_out"] == 0, health
    for what, got in statuses.items():
        assert got and set(got) == {200}, (what, sorted(set(got)))


@pytest.fixture
def database_url(pg_url):  # PostgreSQL only: the pool is what this is about
    return pg_url
