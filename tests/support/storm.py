"""A webhook storm against real worker processes (`funding worker`), for tests/ops/test_storm.py
and bench/webhooks_bench.py --workers: paid donations whose events are delivered several times
in shuffled order into the inbox of a PostgreSQL database, a fake Stripe in its own process
(bench/webhooks_bench.py's, which serves the charges and balance transactions), and N workers
processing them, any of which may be killed with SIGKILL."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import random
import signal
import socket
import sys
import time
from pathlib import Path
from types import ModuleType

import httpx
from sqlalchemy import func, insert, select

from funding.db import create_engine, session_factory, transaction
from funding.ops.models import ProcessHeartbeat
from funding.orgs.service import create_organisation, create_site
from funding.payments.models import EventStatus, Payment, StripeEvent
from tests.support.db import TEST_SEAL_KEY

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "webhooks_bench.py"
SECRET = "whsec_storm_0123456789abcdef"
_bench: ModuleType | None = None


def bench() -> ModuleType:
    """bench/webhooks_bench.py as a module (its donations, fake Stripe and ledger reader)."""
    global _bench
    if _bench is None:
        spec = importlib.util.spec_from_file_location("webhooks_bench", BENCH)
        assert spec is not None and spec.loader is not None
        _bench = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = _bench  # its dataclasses look their module up
        spec.loader.exec_module(_bench)
    return _bench


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(extra: dict[str, str]) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path]), **extra}


class FakeStripe:
    """bench/webhooks_bench.py --serve stripe, in a subprocess."""

    def __init__(self) -> None:
        self.port = _port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> FakeStripe:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, str(BENCH), "--serve", "stripe", "--port", str(self.port),
            env=_env({"BENCH_WEBHOOK_SECRET": SECRET}), stdout=asyncio.subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return self
            except OSError:
                if self.proc.returncode is not None or time.monotonic() > deadline:
                    raise RuntimeError("the fake Stripe did not start") from None
                await asyncio.sleep(0.1)

    async def load(self, objects: Path) -> None:
        async with httpx.AsyncClient(trust_env=False) as client:
            (await client.post(self.url + "/_bench/load", json={"path": str(objects)}, timeout=60)).raise_for_status()

    async def __aexit__(self, *exc) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()


async def seed(url: str, count: int, workdir: Path, *, copies: int = 3, tag: str = "s") -> tuple[int, list]:
    """An organisation and its site, ``count`` open donations, and their ``charge.succeeded``
    events each delivered ``copies`` times in shuffled order into the inbox. Returns (org id, donations)."""
    engine = create_engine(url)
    try:
        async with transaction(session_factory(engine)) as session:
            org = await create_organisation(session, name="Storm", siren="912345675")
            site = await create_site(session, org_id=org.id, slug="storm", name="Storm", is_central=True)
        donations = bench().donations(tag, count, site.id, 1, workdir / "objects.txt")
        async with engine.begin() as conn:
            await conn.execute(insert(Payment), [
                {"id": d.payment_id, "org_id": org.id, "site_id": site.id, "purpose": "donation", "amount": d.amount,
                 "currency": "EUR", "description": "Don", "email": f"donor{d.payment_id}@example.org", "name": "Donor",
                 "status": "open"} for d in donations])
        from webhooks.inbox import store

        deliveries = [d for d in donations for _ in range(copies)]
        random.Random(count).shuffle(deliveries)
        for d in deliveries:
            await store(engine, json.loads(d.body), d.body.decode())
        return org.id, donations
    finally:
        await engine.dispose()


def worker_env(url: str, stripe_url: str, **extra: str) -> dict[str, str]:
    return {"FUNDING_ENV": "test", "DATABASE_URL": url, "STRIPE_SECRET_KEY": "sk_test_storm", "STRIPE_WEBHOOK_SECRET": SECRET,
            "STRIPE_API_BASE": stripe_url, "SECRET_KEY": "storm-secret-key-0123456789", "LEDGER_SEAL_KEY": TEST_SEAL_KEY,
            "WORKER_POLL_SECONDS": "0.2", "HEARTBEAT_SECONDS": "0.5", "HEARTBEAT_STALE_SECONDS": "10",
            "WEBHOOK_BATCH": "25", **extra}


async def start_workers(count: int, env: dict[str, str]) -> list[asyncio.subprocess.Process]:
    return [await asyncio.create_subprocess_exec(sys.executable, "-m", "funding.cli", "worker", env=_env(env),
                                                 stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
            for _ in range(count)]


async def stop_workers(procs: list[asyncio.subprocess.Process]) -> None:
    for proc in procs:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            async with asyncio.timeout(20):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return {str(s): n for s, n in (await conn.execute(
                select(StripeEvent.status, func.count()).group_by(StripeEvent.status))).all()}
    finally:
        await engine.dispose()


async def leases_of(url: str, pid: int) -> int:
    """How many events the worker process ``pid`` holds right now."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.scalar(select(func.count()).select_from(StripeEvent).join(
                ProcessHeartbeat, ProcessHeartbeat.id == StripeEvent.leased_by).where(
                ProcessHeartbeat.pid == pid, StripeEvent.status == EventStatus.PROCESSING)) or 0
    finally:
        await engine.dispose()


async def drained(url: str, total: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if (await counts(url)).get("processed", 0) >= total:
            return True
        await asyncio.sleep(0.2)
    return False


async def books(url: str, org_id: int) -> tuple[dict, object, dict]:
    """The bench's view of the ledger: {source_key: (entry, postings)} whatever the numbering, verify, effects."""
    b = bench()
    return await b.ledger(b.Db("storm", url, org_id))
