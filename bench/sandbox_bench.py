"""Sandbox benchmark: Checkout-to-webhook round trips per second, and what the end-to-end suite pays for them.

    python bench/sandbox_bench.py [--trips 30] [--delivery polite|chaos|both]     (SQLite)

One round trip is what every end-to-end payment does: the donation form makes the product create
a Checkout Session through stripe-python (against the sandbox, served with the product on one
port as ``funding demo`` and the tests serve it: funding.demo.compose), the hosted page is filled
and submitted as a browser does (card 4242…), the sandbox delivers its webhooks to the product,
which processes them: the donation is ``paid`` and its entry is in the ledger. Trips run one after
the other (as the tests do), timed in parts: create (form → session), pay (hosted page), deliver
(until the sandbox has every event acknowledged), process (until the product has booked it).
``chaos`` holds each delivery back up to 1.5 s (and sends some twice, up to 2 s later), so its
deliver time is mostly that wait, not work.

The suite's cost: the end-to-end and browser tests' hosted-page payments (counted from their source:
calls of the helpers that pay, ×2 for SQLite and PostgreSQL) divided by the round trips per second.
Every figure comes from this one run on a shared, noisy machine: compare ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from funding.ledger.models import Entry  # noqa: E402
from funding.migrate import upgrade  # noqa: E402
from funding.payments.models import Payment  # noqa: E402
from funding.settings import load_settings  # noqa: E402
from stripe_sandbox.webhooks import deliveries  # noqa: E402
from tests.support.db import TEST_SEAL_KEY  # noqa: E402
from tests.support.e2e import db_call, donate, e2e_sandbox, pay_on_hosted_page, served  # noqa: E402
from tests.support.live import LiveServer, free_port  # noqa: E402
from tests.support.world import make_world  # noqa: E402

PAYING_HELPERS = re.compile(r"\b(pay_on_hosted_page|join|_pay_pledge|pay)\(")


def suite_payments() -> int:
    """Hosted-page payments the end-to-end and browser tests make (their source, one DB)."""
    count = 0
    for path in [*ROOT.glob("tests/e2e/test_*.py"), *ROOT.glob("tests/browser/test_*.py")]:
        count += len(PAYING_HELPERS.findall(path.read_text(encoding="utf-8")))
    return count


def delivered(sandbox) -> bool:
    """Every event acknowledged by the product (read in-process: polling the admin list would load the server)."""
    with sandbox.lock:
        return all(d.get("delivered_at") for e in sandbox.store.data["objects"]["event"].values() for d in deliveries(e))


def _booked(settings) -> tuple[int, int]:
    async def go(sessions):
        async with sessions() as session:
            paid = await session.scalar(select(func.count()).select_from(Payment).where(Payment.status == "paid"))
            entries = await session.scalar(select(func.count()).select_from(Entry).where(Entry.source_key.like("stripe:%")))
        return int(paid or 0), int(entries or 0)

    return db_call(settings, go)


def run(database_url: str, delivery: str, trips: int) -> dict[str, list[float]]:
    port = free_port()
    settings = load_settings({}, FUNDING_ENV="test", LEDGER_SEAL_KEY=TEST_SEAL_KEY, DATABASE_URL=database_url,
                             SECRET_KEY="bench-secret-key-0123456789", BASE_URL=f"http://127.0.0.1:{port}",
                             WORKER_POLL_SECONDS="0.2", RATE_LIMITS="donate=off")  # one client, many donations
    upgrade(settings.database_url)
    world = db_call(settings, make_world)
    times: dict[str, list[float]] = {"create": [], "pay": [], "deliver": [], "process": [], "total": []}
    sandbox = e2e_sandbox(settings, delivery=delivery, seed=16)
    with LiveServer(served(settings, sandbox), port) as live, \
            httpx.Client(base_url=live.url, follow_redirects=False, timeout=60) as client:
        for n in range(1, trips + 1):
            t0 = time.perf_counter()
            checkout = donate(client, world, amount="20", name=f"Bench {n}", email=f"bench{n}@example.org")
            t1 = time.perf_counter()
            paid = pay_on_hosted_page(client, checkout, "4242424242424242", email=None)
            assert paid.status_code in (302, 303), paid.text[:300]
            t2 = time.perf_counter()
            while not delivered(sandbox):
                time.sleep(0.01)
            td = time.perf_counter()
            while _booked(settings) < (n, n):
                if time.perf_counter() - t2 > 60:
                    raise SystemExit(f"round trip {n}: not booked after 60 s ({_booked(settings)})")
                time.sleep(0.01)
            t3 = time.perf_counter()
            for key, value in (("create", t1 - t0), ("pay", t2 - t1), ("deliver", td - t2), ("process", t3 - td),
                               ("total", t3 - t0)):
                times[key].append(value)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trips", type=int, default=30)
    parser.add_argument("--delivery", choices=("polite", "chaos", "both"), default="both")
    args = parser.parse_args()
    if args.trips < 1:
        parser.error("--trips: at least 1")
    modes = ["polite", "chaos"] if args.delivery == "both" else [args.delivery]
    payments = suite_payments() * 2
    print(f"{args.trips} Checkout-to-webhook round trips per mode, one at a time, on SQLite")
    rates = {}
    for mode in modes:
        with tempfile.TemporaryDirectory() as tmp:
            times = run(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}", mode, args.trips)
        total = sum(times["total"])
        rates[mode] = args.trips / total
        parts = ", ".join(f"{k} {statistics.median(v) * 1000:.0f} ms" for k, v in times.items() if k != "total")
        print(f"  {mode:6}: {rates[mode]:.2f} round trips/s (median {statistics.median(times['total']) * 1000:.0f} ms: {parts})")
    print(f"end-to-end and browser tests: ~{payments} hosted-page payments (both databases) "
          + "; ".join(f"{payments / r:.0f} s of round trips {m}" for m, r in rates.items()))
    if len(rates) == 2:
        print(f"chaos / polite round-trip time: {rates['polite'] / rates['chaos']:.2f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
