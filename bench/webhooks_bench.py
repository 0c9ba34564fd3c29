"""Webhook benchmark (PostgreSQL): intake and processing of Stripe events, and duplicates.

    python bench/webhooks_bench.py [--events 10000] [--duration 15] [--connections 32]

(a) intake: signed ``charge.succeeded`` events per second that POST /webhooks/stripe of the full
    app (``create_app(settings, process_events=False)``) verifies, stores (committed) and
    acknowledges, against a bare Starlette endpoint that only calls the same ``verify_signature``.
    Both are served by uvicorn (one worker, same settings) in a subprocess and loaded by wrk
    (bench/webhooks_wrk.lua replays bodies signed just before the run, each a distinct event).
(b) processing: events per second that ``webhooks.processing.drain`` turns into chained,
    balanced ledger entries (paid donations: the payment settled, its receipt queued), fetching
    each charge and its balance transaction over HTTP from a fake Stripe (a Starlette app in
    another subprocess, objects in memory, ``expand`` honoured as tests/support/stripe_objects.py does).
    Checked after: exactly one entry per event's balance transaction, ``verify_org`` OK.
(c) duplicates: EVENTS events, each delivered 3 times in shuffled order by 8 concurrent senders
    through the real endpoint, then drained; the ledger (keyed by source_key) must equal the one
    of a second database where each event was delivered once.

(d) workers: EVENTS_W events (each delivered 3 times, shuffled) drained by 1, 2 and 4 `funding worker`
    processes (real subprocesses, tests/support/storm.py) against one PostgreSQL: events per second
    for each, and whether every run's ledger equals the 1-worker one. ``--only-workers`` runs (d) alone.

Throw-away databases on TEST_POSTGRES_URL (default the local server). Every figure comes from
this one run: compare the ratios, not absolute numbers (machines here are shared and noisy).
Without wrk (``apt-get install wrk``) intake falls back to an httpx load generator, and says so.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import collections
import json
import os
import random
import resource
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from sqlalchemy import func, insert, select
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from funding.db import create_engine, session_factory, transaction
from funding.ledger.models import Entry, Posting
from funding.ledger.verify import verify_org
from funding.mail.models import Email
from funding.migrate import upgrade
from funding.orgs.service import create_organisation, create_site
from funding.payments.models import Payment, StripeEvent
from funding.settings import load_settings
from funding.stripe_gateway import SignatureError, StripeGateway, sign_payload, verify_signature
from tests.support import stripe_objects as so
from webhooks.processing import drain

ADMIN = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
LUA = Path(__file__).resolve().parent / "webhooks_wrk.lua"
SECRET = os.environ.get("BENCH_WEBHOOK_SECRET") or "whsec_bench_" + secrets.token_hex(16)
PEAK_MB: dict[str, float] = {}
RUNNING: list[Server] = []


# --- servers, each in its own process: webhooks_bench.py --serve app|bare|stripe --port P ------------

def bare_app() -> Starlette:
    async def webhook(request):
        try:
            verify_signature(await request.body(), request.headers.get("stripe-signature"), SECRET)
        except SignatureError as exc:
            return JSONResponse({"error": f"invalid signature: {exc}"}, status_code=400)
        return JSONResponse({"received": True})

    return Starlette(routes=[Route("/webhooks/stripe", webhook, methods=["POST"])])


def stripe_app() -> Starlette:
    objects: dict[str, bytes] = {}  # id -> compact JSON
    txns: list[tuple[int, str]] = []  # balance transactions as (created, id), sorted: Stripe's list is indexed
    position: dict[str, int] = {}

    async def load(request):  # lines "<id>\t<json>" of a file written by the bench
        data = await asyncio.to_thread(Path((await request.json())["path"]).read_bytes)
        for line in data.splitlines():  # compact JSON: no raw line break inside an object
            oid, _, raw = line.partition(b"\t")
            objects[oid.decode()] = raw
            if oid.startswith(b"txn_"):
                txns.append((json.loads(raw)["created"], oid.decode()))
        txns.sort()
        position.clear()
        position.update((oid, n) for n, (_, oid) in enumerate(txns))
        return JSONResponse({"objects": len(objects)})

    async def retrieve(request):  # GET /v1/<resource>/<id>[?expand[]=…]
        oid = request.path_params["oid"]
        if oid not in objects:
            return JSONResponse({"error": {"type": "invalid_request_error", "code": "resource_missing",
                                           "message": f"No such object: '{oid}'"}}, status_code=404)
        paths = [v for k, v in request.query_params.multi_items() if k.startswith("expand")]
        if not paths:
            return Response(objects[oid], media_type="application/json")
        obj = json.loads(objects[oid])
        for path in paths:
            target = obj
            for part in path.split("."):
                value = target.get(part)
                if isinstance(value, str) and value in objects:
                    value = target[part] = json.loads(objects[value])
                if not isinstance(value, dict):
                    break
                target = value
        return JSONResponse(obj)

    async def list_txns(request):  # GET /v1/balance_transactions?created[gte]=…&created[lte]=…&expand[]=data.source
        q = request.query_params
        low, high = int(q.get("created[gte]", 0)), int(q.get("created[lte]", 2**62))
        after, limit = q.get("starting_after"), int(q.get("limit", 10))
        expand = any(v == "data.source" for k, v in q.multi_items() if k.startswith("expand"))
        start, end = bisect.bisect_left(txns, (low, "")), bisect.bisect_right(txns, (high, "\uffff"))
        if after in position and start <= position[after] < end:
            start = position[after] + 1
        page = []
        for _, oid in txns[start:min(start + limit, end)]:
            txn = json.loads(objects[oid])
            if expand and txn.get("source") in objects:
                txn["source"] = json.loads(objects[txn["source"]])
            page.append(txn)
        return JSONResponse({"object": "list", "data": page, "has_more": start + limit < end, "url": "/v1/balance_transactions"})

    return Starlette(routes=[Route("/_bench/load", load, methods=["POST"]),
                             Route("/v1/balance_transactions", list_txns),
                             Route("/v1/{resource}/{oid}", retrieve)])


def serve(kind: str, port: int) -> None:
    import uvicorn

    if kind == "app":
        from funding.app import create_app

        app = create_app(load_settings(), process_events=False)
    else:
        app = bare_app() if kind == "bare" else stripe_app()
    uvicorn.run(app, host="127.0.0.1", port=port, workers=1, log_level="warning", access_log=False)


class Server:
    def __init__(self, kind: str, env: dict | None = None):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.kind, self.url = kind, f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", kind, "--port", str(self.port)],
                                     env={**os.environ, "BENCH_WEBHOOK_SECRET": SECRET, **(env or {})},
                                     stdout=subprocess.DEVNULL)
        RUNNING.append(self)
        deadline = time.monotonic() + 30
        while not self.listening():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{kind} server did not start")
            time.sleep(0.1)

    def listening(self) -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> None:
        with open(f"/proc/{self.proc.pid}/status") as f:
            hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
        PEAK_MB[self.kind] = max(PEAK_MB.get(self.kind, 0), hwm)
        self.proc.terminate()
        self.proc.wait(timeout=15)
        RUNNING.remove(self)


# --- databases and data ------------------------------------------------------------------------

@dataclass
class Db:
    name: str
    url: str
    org_id: int = 0
    site_id: int = 0

    def env(self, stripe_url: str) -> dict:
        return {"FUNDING_ENV": "test", "DATABASE_URL": self.url, "STRIPE_SECRET_KEY": "sk_test_bench",
                "STRIPE_WEBHOOK_SECRET": SECRET, "STRIPE_API_BASE": stripe_url,
                "SECRET_KEY": "bench-secret-key-0123456789"}


async def admin(sql: str):
    import asyncpg

    conn = await asyncpg.connect(ADMIN)
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()


async def new_db(created: list[Db]) -> Db:
    """A migrated database with one organisation and its site (same ids in every fresh database)."""
    name = f"funding_bench_{secrets.token_hex(4)}"
    await admin(f'CREATE DATABASE "{name}"')
    db = Db(name, "postgresql+asyncpg://" + ADMIN.split("://", 1)[1].rsplit("/", 1)[0] + f"/{name}")
    created.append(db)
    await asyncio.to_thread(upgrade, db.url)
    engine = create_engine(db.url)
    async with transaction(session_factory(engine)) as session:
        org = await create_organisation(session, name="Bench", siren="912345675")
        site = await create_site(session, org_id=org.id, slug="bench", name="Bench", is_central=True)
        db.org_id, db.site_id = org.id, site.id
    await engine.dispose()
    return db


@dataclass
class Donation:
    event_id: str
    txn_id: str
    payment_id: int
    amount: int
    body: bytes


def donations(tag: str, count: int, site_id: int, first_payment: int, objects_file: Path) -> list[Donation]:
    """``charge.succeeded`` of paid donations; the charges, balance transactions and PaymentIntents
    are written to ``objects_file`` for the fake Stripe."""
    out, created = [], int(time.time())
    with open(objects_file, "a") as f:
        for i in range(count):
            pid, amount = first_payment + i, 1000 + (i * 37) % 9000
            meta = {"purpose": "donation", "site_id": str(site_id), "payment_id": str(pid)}
            ch_id, txn_id, pi_id = f"ch_{tag}{i:07d}", f"txn_{tag}{i:07d}", f"pi_{tag}{i:07d}"
            pi = {**so.payment_intent(amount=amount, metadata=meta, latest_charge=ch_id), "id": pi_id}
            txn = so.balance_transaction(amount=amount, fee=25 + amount * 15 // 1000, source=ch_id, created=created,
                                         txn_id=txn_id)
            ch = so.charge(amount=amount, txn=txn_id, metadata=meta, payment_intent=pi_id, charge_id=ch_id)
            f.writelines(f"{obj['id']}\t{json.dumps(obj)}\n" for obj in (ch, txn, pi))
            event = so.event("charge.succeeded", ch, event_id=f"evt_{tag}{i:07d}", created=created)
            out.append(Donation(event["id"], txn_id, pid, amount, json.dumps(event).encode()))
    return out


async def add_payments(db: Db, batch: list[Donation]) -> None:
    """The open payments the donations pay (checkout created them before Stripe charged)."""
    engine = create_engine(db.url)
    async with engine.begin() as conn:
        await conn.execute(insert(Payment), [
            {"id": d.payment_id, "org_id": db.org_id, "site_id": db.site_id, "purpose": "donation", "amount": d.amount,
             "currency": "EUR", "description": "Don", "email": f"donor{d.payment_id}@example.org", "name": "Donor",
             "status": "open"} for d in batch])
    await engine.dispose()


async def load_stripe(stripe: Server, objects: Path) -> int:
    async with httpx.AsyncClient(trust_env=False) as client:
        response = await client.post(stripe.url + "/_bench/load", json={"path": str(objects)}, timeout=120)
        return response.json()["objects"]


# --- load generators ---------------------------------------------------------------------------

def wrk(url: str, batch: list[Donation], duration: int, connections: int, workdir: Path) -> tuple[int, float, dict]:
    path = workdir / "bodies.txt"
    with open(path, "wb") as f:  # signed now, so the 300 s tolerance holds during the run
        f.writelines(sign_payload(d.body, SECRET).encode() + b"\t" + d.body + b"\n" for d in batch)
    run = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "10s", "-s", str(LUA),
                          url + "/webhooks/stripe"], env={**os.environ, "WEBHOOK_BODIES": str(path)},
                         capture_output=True, text=True, check=False)
    if run.returncode:
        raise RuntimeError(f"wrk failed: {run.stdout}{run.stderr}")
    stats = json.loads(next(line for line in run.stdout.splitlines() if line.startswith("WRKJSON "))[8:])
    return stats["requests"], stats["duration_us"] / 1e6, stats


async def send(url: str, bodies: list[bytes], senders: int, duration: float | None = None) -> tuple[int, float, dict]:
    """``senders`` concurrent httpx senders; each body signed right before it is sent."""
    todo, counts = iter(bodies), collections.Counter()
    deadline = time.perf_counter() + duration if duration else None

    async def sender(client):
        for body in todo:
            if deadline and time.perf_counter() > deadline:
                return
            r = await client.post(url + "/webhooks/stripe", content=body, headers={
                "Stripe-Signature": sign_payload(body, SECRET), "Content-Type": "application/json"})
            counts[r.status_code] += 1
            counts["duplicate"] += r.status_code == 200 and r.json().get("duplicate") is True

    started = time.perf_counter()
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=senders), timeout=30, trust_env=False) as client:
        await asyncio.gather(*(sender(client) for _ in range(senders)))
    return sum(v for k, v in counts.items() if k != "duplicate"), time.perf_counter() - started, dict(counts)


# --- measurements ------------------------------------------------------------------------------

async def stored_ids(db: Db) -> set[str]:
    engine = create_engine(db.url)
    async with engine.connect() as conn:
        ids = set(await conn.scalars(select(StripeEvent.id)))
    await engine.dispose()
    return ids


async def process(db: Db, stripe: Server) -> tuple[int, float]:
    engine, gw = create_engine(db.url), StripeGateway(load_settings(db.env(stripe.url)))
    started = time.perf_counter()
    done = await drain(session_factory(engine), gw)
    elapsed = time.perf_counter() - started
    await gw.aclose()
    await engine.dispose()
    return done, elapsed


async def ledger(db: Db) -> tuple[dict, object, dict]:
    """{source_key: (entry fields, postings)} whatever the numbering, the verify report, side effects."""
    E, P = Entry.__table__.c, Posting.__table__.c
    engine = create_engine(db.url)
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(E.source_key, E.journal_code, E.entry_date, E.label, E.piece_ref, E.piece_date, E.site_id,
                   E.funding_source, P.line_no, P.account_number, P.aux_code, P.amount, P.currency, P.label)
            .select_from(Entry.__table__.join(Posting.__table__, P.entry_id == E.id))
            .where(E.org_id == db.org_id).order_by(E.source_key, P.line_no))
        books: dict[str, tuple] = {}
        for r in rows:
            head, lines = books.get(r[0], (tuple(r[1:8]), ()))
            books[r[0]] = (head, (*lines, tuple(r[8:])))
        report = await verify_org(conn, db.org_id)
        effects = {"events processed": await conn.scalar(select(func.count()).where(StripeEvent.status == "processed")),
                   "payments paid": await conn.scalar(select(func.count()).where(Payment.status == "paid")),
                   "receipts queued": await conn.scalar(select(func.count()).select_from(Email))}
    await engine.dispose()
    return books, report, effects


async def workers_section(args, dbs: list[Db], workdir: Path) -> None:
    """(d) the same storm drained by 1, 2, 4 worker processes."""
    from tests.support import storm

    counts = [int(n) for n in args.workers.split(",") if n.strip()]
    print(f"\n(d) {args.events_w:,} events × 3 deliveries drained by `funding worker` processes "
          f"(WEBHOOK_BATCH={args.worker_batch})", flush=True)
    rates, first = {}, None
    async with storm.FakeStripe() as stripe:
        for n in counts:
            name = f"funding_bench_{secrets.token_hex(4)}"
            await admin(f'CREATE DATABASE "{name}"')
            db = Db(name, "postgresql+asyncpg://" + ADMIN.split("://", 1)[1].rsplit("/", 1)[0] + f"/{name}")
            dbs.append(db)
            await asyncio.to_thread(upgrade, db.url)
            sub = workdir / f"workers{n}"
            sub.mkdir()
            org_id, _ = await storm.seed(db.url, args.events_w, sub)
            await stripe.load(sub / "objects.txt")
            env = storm.worker_env(db.url, stripe.url, WEBHOOK_BATCH=str(args.worker_batch))
            procs = await storm.start_workers(n, env)
            try:
                # Timed from the first claim (process start-up is not throughput) to the last event processed.
                for _ in range(30_000):
                    seen = await storm.counts(db.url)
                    if seen.get("processing") or seen.get("processed"):
                        break
                    await asyncio.sleep(0.02)
                started = time.perf_counter()
                ok = await storm.drained(db.url, args.events_w, within=600)
                secs = time.perf_counter() - started
            finally:
                await storm.stop_workers(procs)
            books, report, _ = await storm.books(db.url, org_id)
            first = first if first is not None else books
            rates[n] = args.events_w / secs
            print(f"    {n} worker(s): {args.events_w:,} events in {secs:.1f} s = {rates[n]:,.0f} events/s"
                  f" ({rates[n] / rates[counts[0]]:.2f}× {counts[0]} worker); drained {'yes' if ok else 'NO'}; "
                  f"verify_org {'OK' if report.ok else 'FAILED'}; ledger {'= ' + str(counts[0]) + ' worker' if books == first else 'DIFFERS'}",
                  flush=True)


async def main(args) -> None:
    dbs: list[Db] = []
    if args.only_workers:
        workdir = Path(tempfile.mkdtemp(prefix="webhooks_bench_"))
        print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}", flush=True)
        try:
            await workers_section(args, dbs, workdir)
        finally:
            for db in dbs:
                await admin(f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE)')
            shutil.rmtree(workdir, ignore_errors=True)
        return
    workdir = Path(tempfile.mkdtemp(prefix="webhooks_bench_"))
    objects = workdir / "objects.txt"
    stripe = Server("stripe")
    pg = (await admin("SELECT version() v, current_setting('synchronous_commit') s, current_setting('fsync') f"))[0]
    generator = f"wrk -t1 -c{args.connections}" if shutil.which("wrk") else "httpx senders (wrk NOT FOUND: fallback)"
    print(f"{pg['v'].split(',')[0]}, synchronous_commit={pg['s']}, fsync={pg['f']}; {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}; intake load generator: {generator}", flush=True)

    async def load(url: str, batch: list[Donation], duration: int) -> tuple[int, float, dict]:
        if shutil.which("wrk"):
            return await asyncio.to_thread(wrk, url, batch, duration, args.connections, workdir)
        return await send(url, [d.body for d in batch], args.connections, duration)

    try:
        # (a) intake: bare endpoint, then the real one (a warm-up run also tells how many bodies to sign)
        db = await new_db(dbs)
        warm = donations("w", 5000, db.site_id, 1, objects)
        bare = Server("bare")
        await load(bare.url, warm, 2)
        n, secs, stats = await load(bare.url, warm, args.duration)
        bare.stop()
        bare_rate = n / secs
        print(f"\n(a) intake, {args.duration} s per endpoint, {args.connections} connections")
        print(f"    bare endpoint (verify only):          {bare_rate:8,.0f} events/s  ({n:,} requests; {stats})")
        app = Server("app", db.env(stripe.url))
        n, secs, _ = await load(app.url, warm, 3)
        batch = donations("a", int(n / secs * args.duration * 1.5) + 2000, db.site_id, len(warm) + 1, objects)
        before = len(await stored_ids(db))
        n, secs, stats = await load(app.url, batch, args.duration)
        app.stop()
        ids = await stored_ids(db)
        real_rate = n / secs
        print(f"    real endpoint (verify, insert, commit): {real_rate:8,.0f} events/s  ({n:,} acknowledged, "
              f"{len(ids) - before:,} new events stored incl. in flight at the end; {stats})")
        print(f"    real / bare = {real_rate / bare_rate:.3f}×  (goal ≥ 0.25×)", flush=True)

        # (b) processing of everything intake stored (warm-up included)
        await add_payments(db, warm + batch)
        expected = {f"stripe:{d.txn_id}" for d in warm + batch if d.event_id in ids}
        held = await load_stripe(stripe, objects)
        print(f"\n(b) processing {len(ids):,} stored events; the fake Stripe holds {held:,} objects")
        done, secs = await process(db, stripe)
        books, report, effects = await ledger(db)
        exact = set(books) == expected and report.entries == len(expected)
        rate = done / secs
        print(f"    drain: {done:,} events in {secs:.1f} s = {rate:,.0f} events/s")
        print(f"    ledger: {report.entries:,} entries for {len(expected):,} balance transactions: "
              f"{'exactly one each' if exact else 'MISMATCH'}; "
              f"verify_org {'OK' if report.ok else report.problems[:3]}; {effects}")
        print(f"    processing / bare intake = {rate / bare_rate:.3f}×  (goal ≥ 0.12×)", flush=True)

        # (c) duplicates: the same events once into one database, three times shuffled into another
        once, triple = await new_db(dbs), await new_db(dbs)
        assert (once.org_id, once.site_id) == (triple.org_id, triple.site_id)
        dup = donations("c", args.events, once.site_id, 1, workdir / "objects_c.txt")
        await load_stripe(stripe, workdir / "objects_c.txt")
        results = {}
        for target, copies in ((once, 1), (triple, 3)):
            await add_payments(target, dup)
            bodies = [d.body for d in dup for _ in range(copies)]
            random.Random(copies).shuffle(bodies)
            app = Server("app", target.env(stripe.url))
            sent, secs, counts = await send(app.url, bodies, senders=8)
            app.stop()
            done, drain_secs = await process(target, stripe)
            results[copies] = await ledger(target)
            print(f"\n(c) {copies}× each of {args.events:,} events: {sent:,} deliveries by 8 senders in {secs:.1f} s, "
                  f"responses {counts}; drained {done:,} in {drain_secs:.1f} s; "
                  f"verify_org {'OK' if results[copies][1].ok else 'FAILED'}; {results[copies][2]}", flush=True)
        a, b = results[1][0], results[3][0]
        differ = sum(a[k] != b[k] for k in a.keys() & b.keys())
        same = a == b and len(a) == args.events and results[1][2] == results[3][2]
        print(f"    ledger of 3× vs 1× deliveries: {'OK' if same else 'MISMATCH'} — {len(b):,} vs {len(a):,} entries, "
              f"{len(b.keys() - a.keys())} extra, {len(a.keys() - b.keys())} missing, {differ} different")
        await workers_section(args, dbs, workdir)
    finally:
        for server in list(RUNNING):
            server.stop()
        for db in dbs:
            await admin(f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE)')
        shutil.rmtree(workdir, ignore_errors=True)
    servers = ", ".join(f"{k} server {v:.0f} MB" for k, v in PEAK_MB.items())
    print(f"\npeak RSS: bench process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; {servers}; "
          f"load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000, help="events replayed in (c)")
    parser.add_argument("--duration", type=int, default=15, help="seconds of load per endpoint in (a)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections in (a)")
    parser.add_argument("--workers", default="1,2,4", help="worker process counts measured in (d)")
    parser.add_argument("--events-w", type=int, default=4000, help="events drained in (d)")
    parser.add_argument("--worker-batch", type=int, default=100, help="WEBHOOK_BATCH of the workers in (d)")
    parser.add_argument("--only-workers", action="store_true", help="run (d) alone")
    parser.add_argument("--serve", choices=("app", "bare", "stripe"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    cli = parser.parse_args()
    if cli.serve:
        serve(cli.serve, cli.port)
    else:
        asyncio.run(main(cli))
