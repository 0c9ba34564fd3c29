"""Bar till benchmark (PostgreSQL): the add-item request rate as a ratio to a bare endpoint,
and the latency with 20 concurrent tills.

    python bench/bar_bench.py [--seconds 10] [--tills 20] [--members 40] [--history 500]

Creates a throw-away database on TEST_POSTGRES_URL (default the local server), seeds a site
with products, a staff member and members, and serves the real app with uvicorn in a
separate process, plus one bare endpoint (POST /bench/bare: the same middleware — session,
CSRF, locale — and no database). Then, in the same run, with the same staff session and
headers, TILLS concurrent connections (one per till) post:

- to the bare endpoint, then
- to the till's add-item endpoint (/bar/<site>/caisse/vente, JSON answer, as the till's
  script does: each tap is one chained sale line under the site's head lock),

with wrk (apt-get install wrk) or, without it, an asyncio load generator; and prints the
rates, their ratio and the latency percentiles. With --history N, the members are then given N
settled lines each (rung, then claimed by a cut-off) and the taps run again: the ratio of the two
add-item rates says whether a tap costs more as a member's history grows. Every answer must be a 2xx, and afterwards
every accepted tap is a sale line and `ledger verify` passes. Ratios, not verdicts: machines
here are noisy, compare within one run.

Measured on 2026-12-06 (2 CPUs, PostgreSQL 15, wrk), before → after the organisation wall's
criteria were built once per scope (funding/scoping.py: they cost ~2 ms of Python per ORM
statement) and the tab limit was checked before the site's head instead of inside the INSERT:
    20 tills: 75 → 142 req/s; p50 239 → 136 ms; p99 629 → 272 ms (bare endpoint ~6,700 req/s: 0.01 → 0.02)
    1 till:   77 → 109 req/s; p50 12.1 → 8.4 ms; p99 97.8 → 19.5 ms
then, later the same day, before → after a tap on a tab became one statement on PostgreSQL
(bar_ring_up, funding.bar.till.ring_up_at_once; py-spy had shown ~9 ms of Python per tap, mostly
SQLAlchemy's ORM building, caching and running eight statements):
    20 tills: 101 → 607-618 req/s; p50 186 → 30-32 ms; p99 430 → 87-122 ms (bare 6,065 / 6,584-6,973 req/s: 0.02 → 0.09)
    1 till:   p50 8.4 → 3.7-4.1 ms; p99 19.5 → 7.1-7.3 ms
(three runs after; who may tap is require()'s query on the tap's connection, then the function.)
Later again (another machine of the kind, slower: bare 3,300-3,900 req/s), before → after the
pool's check became one round trip (funding.db._ping), who is logged in was read as columns on the
tap's connection (funding.web.load_user), bar_tabs replaced the sum over a member's history, and the
web process froze startup's objects out of the garbage collector's full walks (funding.app):
    20 tills: 285-373 → 495-639 req/s (0.09-0.11 → 0.14-0.17); p50 51-68 → 29-40 ms; p99 104-190 → 65 ms
    1 till:   143 → 332 req/s; p50 6.7 → 2.9 ms; p99 12.9 → 5.5 ms
    --history 500, 1 till: add-item after / before the history 0.54 → 0.94
The web process is the bottleneck (one CPU at 100 %, PostgreSQL about 65 % of the other): about
1.3 ms of Python per tap against 0.25 ms for the bare endpoint (SQLAlchemy's execution and the
pool's checkout, Starlette's routing through about a hundred routes, the form, the answer).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ADMIN = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SECRET = "bench-secret-key-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(url: str, port: int) -> subprocess.Popen:
    """This script serving the app on ``port`` in another process; returns once it answers (or
    after 2 minutes: the bench's first request then says what is wrong; a loaded machine starts slowly)."""
    server = subprocess.Popen([sys.executable, __file__, "--serve", url, "--port", str(port)])
    for _ in range(1200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.1)
    return server


async def admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def serve(url: str, port: int) -> None:
    """The server process: the app with one bare endpoint added."""
    import uvicorn
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from funding.app import create_app
    from funding.settings import load_settings

    async def bare(request):
        return JSONResponse({"ok": True})

    settings = load_settings(FUNDING_ENV="development", DATABASE_URL=url, SECRET_KEY=SECRET,
                             BASE_URL=f"http://127.0.0.1:{port}", BAR_TAB_LIMIT="1000000")
    app = create_app(settings)
    app.router.routes.insert(0, Route("/bench/bare", bare, methods=["POST"]))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


async def seed(url: str, members: int) -> dict:
    from funding.auth.models import User
    from funding.auth.service import create_user, issue_link
    from funding.bar.catalog import add_product
    from funding.db import create_engine, session_factory, transaction
    from funding.orgs.service import create_organisation, create_site
    from funding.settings import load_settings

    engine = create_engine(url)
    try:
        async with transaction(session_factory(engine)) as session:
            org = await create_organisation(session, name="Bench", siren="912345675", vat_liable=True)
            site = await create_site(session, org_id=org.id, slug="bench", name="Bar de bench", is_central=True)
            products = [(await add_product(session, site, name=name, price=price, vat_rate=rate)).id
                        for name, price, rate in (("Café", "1,50", "10"), ("Bière locale", "4,50", "20"),
                                                  ("Jus de pomme", "3,00", "5,5"))]
            staff = await create_user(session, email="staff@bench.example", name="Bench", role="staff", org_id=org.id)
            ids = [(await create_user(session, email=f"m{n}@bench.example", name=f"Membre {n}", role="member",
                                      org_id=org.id)).id for n in range(members)]
        async with transaction(session_factory(engine)) as session:
            settings = load_settings(FUNDING_ENV="development", DATABASE_URL=url, SECRET_KEY=SECRET)
            link = await issue_link(session, await session.get(User, staff.id), settings)
        return {"org_id": org.id, "products": products, "members": ids, "link": link}
    finally:
        await engine.dispose()


async def history(url: str, seeded: dict, lines: int) -> None:
    """``lines`` sale lines per member through bar_ring_up (one statement, one transaction), then
    the cut-off that claims every open line into the members' batches, as a month's end does."""
    from sqlalchemy import text

    from funding.bar.settlement import cut_off
    from funding.db import create_engine, session_factory

    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            # In the select list, once per row (a LATERAL call may be memoized per member).
            rung = await conn.scalar(text(
                "SELECT count(*) FILTER (WHERE (x.r).o_outcome = 'ok') FROM (SELECT bar_ring_up(NULL, 'Historique', "
                "'bench', :product, m, 1, 1000000000000, CAST(now() AS timestamp), current_date) AS r "
                "FROM generate_series(1, :lines) g, unnest(CAST(:members AS bigint[])) m) x"),
                {"lines": lines, "members": seeded["members"], "product": seeded["products"][0]})
            assert rung == lines * len(seeded["members"]), rung
        await cut_off(session_factory(engine), key="historique")
    finally:
        await engine.dispose()


def login(base: str, link: str) -> tuple[str, str]:
    """A staff session cookie and its CSRF token, as the till's page carries them."""
    import httpx

    path = link.split("://", 1)[1].split("/", 1)[1]
    with httpx.Client(base_url=base, follow_redirects=False, timeout=30) as client:
        page = client.get(f"/{path}")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        assert client.post(f"/{path}", data={"csrf_token": token}).status_code == 303
        page = client.get("/bar/bench/caisse")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    return cookie, token


LUA = """
local bodies = {%(bodies)s}
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Accept"] = "application/json"
wrk.headers["Cookie"] = "%(cookie)s"
wrk.headers["X-CSRF-Token"] = "%(token)s"
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil, bodies[(n %% #bodies) + 1])
end
"""


def run_wrk(url: str, seconds: int, tills: int, script: Path) -> dict:
    out = subprocess.run(["wrk", "-t", str(min(2, tills)), "-c", str(tills), "-d", f"{seconds}s", "--latency", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    pct = {p: _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M)}
    return {"rate": rate, "total": total, "bad": int(bad.group(1)) if bad else 0, "errors": errors.group(1) if errors else "",
            "p50": pct["50"], "p90": pct["90"], "p99": pct["99"]}


def _ms(text: str) -> float:
    value = float(re.match(r"[\d.]+", text).group(0))
    return value * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[re.sub(r"[\d.]+", "", text)]


async def run_asyncio(url: str, seconds: int, tills: int, cookie: str, token: str, bodies: list[str]) -> dict:
    """Fallback without wrk: TILLS closed-loop clients, per-request latency."""
    import httpx

    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json", "Cookie": cookie,
               "X-CSRF-Token": token}
    latencies: list[float] = []
    bad = 0
    deadline = time.perf_counter() + seconds

    async def till(n: int) -> None:
        nonlocal bad
        async with httpx.AsyncClient(timeout=30) as client:
            i = n
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = await client.post(url, content=bodies[i % len(bodies)], headers=headers)
                latencies.append((time.perf_counter() - started) * 1000)
                bad += not response.is_success
                i += tills

    started = time.perf_counter()
    await asyncio.gather(*(till(n) for n in range(tills)))
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))]

    return {"rate": len(latencies) / elapsed, "total": len(latencies), "bad": bad, "errors": "",
            "p50": pct(0.50), "p90": pct(0.90), "p99": pct(0.99)}


async def main(args) -> None:
    from funding.db import create_engine
    from funding.ledger.verify import verify_org
    from funding.migrate import upgrade
    from funding.settings import load_settings

    name = f"funding_bench_{secrets.token_hex(4)}"
    await admin(f'CREATE DATABASE "{name}"')
    url = load_settings(serving=False, DATABASE_URL=ADMIN.rsplit("/", 1)[0] + f"/{name}").database_url
    server = None
    try:
        await asyncio.to_thread(upgrade, url)
        seeded = await seed(url, args.members)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = await asyncio.to_thread(start_server, url, port)
        cookie, token = login(base, seeded["link"])
        taps = [f"product_id={p}&member_id={m}" for m in seeded["members"] for p in seeded["products"]]
        tool = "wrk" if shutil.which("wrk") and not args.asyncio else "asyncio"
        print(f"load: {tool}, {args.tills} concurrent tills, {args.seconds} s per endpoint, one site "
              f"({args.members} members), server: uvicorn, 1 process", flush=True)
        results = {}
        with tempfile.TemporaryDirectory() as tmp:
            for label, path, bodies in (("bare", "/bench/bare", ["x=1"]), ("add-item", "/bar/bench/caisse/vente", taps)):
                target = base + path
                if tool == "wrk":
                    script = Path(tmp) / f"{label}.lua"
                    script.write_text(LUA % {"bodies": ", ".join(f'"{b}"' for b in bodies), "cookie": cookie,
                                             "token": token})
                    run_wrk(target, 2, args.tills, script)  # warm-up
                    results[label] = run_wrk(target, args.seconds, args.tills, script)
                else:
                    await run_asyncio(target, 2, args.tills, cookie, token, bodies)
                    results[label] = await run_asyncio(target, args.seconds, args.tills, cookie, token, bodies)
            if args.history:
                # Each member's settled past: HISTORY lines rung (as the till does, one statement each)
                # and claimed by a cut-off, the month's open lines with them. Then the same taps again:
                # a tap should cost the same whatever the members' history (their tabs are one row each).
                started = time.perf_counter()
                await history(url, seeded, args.history)
                print(f"history: {args.history:,} settled lines per member ({args.history * len(seeded['members']):,} in all) "
                      f"in {time.perf_counter() - started:.0f} s", flush=True)
                label, target = f"add-item, {args.history:,} settled lines per member", base + "/bar/bench/caisse/vente"
                if tool == "wrk":
                    script = Path(tmp) / "add-item.lua"
                    run_wrk(target, 2, args.tills, script)
                    results[label] = run_wrk(target, args.seconds, args.tills, script)
                else:
                    await run_asyncio(target, 2, args.tills, cookie, token, taps)
                    results[label] = await run_asyncio(target, args.seconds, args.tills, cookie, token, taps)
        for label, r in results.items():
            print(f"{label:>9}: {r['rate']:8,.0f} req/s  ({r['total']:,} requests, {r['bad']} non-2xx"
                  f"{', socket errors ' + r['errors'] if r['errors'] else ''})  latency p50 {r['p50']:.1f} ms  "
                  f"p90 {r['p90']:.1f} ms  p99 {r['p99']:.1f} ms", flush=True)
        ratio = results["add-item"]["rate"] / results["bare"]["rate"]
        print(f"add-item / bare request rate = {ratio:.2f}")
        print(f"add-item p99 latency with {args.tills} concurrent tills = {results['add-item']['p99']:.1f} ms")
        if args.history:
            later = results[f"add-item, {args.history:,} settled lines per member"]
            print(f"add-item with {args.history:,} settled lines per member / without = {later['rate'] / results['add-item']['rate']:.2f}"
                  f" (p50 {later['p50']:.1f} vs {results['add-item']['p50']:.1f} ms)")

        server.terminate()  # every request answered or dropped: count and verify a still database
        server.wait(timeout=10)
        server = None
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                from sqlalchemy import text

                lines = (await conn.execute(text("SELECT count(*) FROM bar_sale_lines"))).scalar_one()
                report = await verify_org(conn, seeded["org_id"])
        finally:
            await engine.dispose()
        print(f"sale lines recorded: {lines:,}; ledger verify: {'OK' if report.ok else report.problems[:3]}")
        assert report.ok and all(r["bad"] == 0 for r in results.values())
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--tills", type=int, default=20)
    parser.add_argument("--members", type=int, default=40)
    parser.add_argument("--history", type=int, default=0,
                        help="then tap again after this many settled lines per member (a tap should not cost more)")
    parser.add_argument("--asyncio", action="store_true", help="use the asyncio load generator even if wrk is there")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
    else:
        asyncio.run(main(args))
