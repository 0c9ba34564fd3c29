"""Past one process (issue 19): several `funding worker` processes against one PostgreSQL give
the books one worker gives, even when one of them is killed with SIGKILL mid-batch."""

from __future__ import annotations

import asyncio
import os
import signal
import time

from tests.support import storm
from tests.support.db import empty_pg

EVENTS = int(os.environ.get("STORM_EVENTS", "300"))


async def _run(pg_url: str, workers: int, tmp_path, *, kill_one: bool) -> tuple:
    tmp_path.mkdir(parents=True, exist_ok=True)
    async with storm.FakeStripe() as stripe:
        org_id, donations = await storm.seed(pg_url, EVENTS, tmp_path)
        await stripe.load(tmp_path / "objects.txt")
        procs = await storm.start_workers(workers, storm.worker_env(pg_url, stripe.url))
        killed = None
        try:
            if kill_one:  # SIGKILL a worker while it holds leases: no clean stop, its row stays behind
                deadline = time.monotonic() + 60
                while killed is None and time.monotonic() < deadline:
                    for proc in procs:
                        if await storm.leases_of(pg_url, proc.pid):
                            proc.send_signal(signal.SIGKILL)
                            killed = proc
                            break
                    else:
                        await asyncio.sleep(0.05)
                assert killed is not None, "no worker ever held a lease"
            # Five minutes of lease would outlast this: the killed worker's events are taken at once.
            assert await storm.drained(pg_url, EVENTS, within=120), await storm.counts(pg_url)
        finally:
            await storm.stop_workers(procs)
        return await storm.books(pg_url, org_id), len(donations)


async def test_four_workers_and_one_killed_give_the_books_of_one(pg_url, tmp_path):
    (alone, report_alone, effects_alone), n = await _run(pg_url, 1, tmp_path / "one", kill_one=False)
    assert report_alone.ok and len(alone) == n == EVENTS
    empty_pg(pg_url)
    (many, report_many, effects_many), _ = await _run(pg_url, 4, tmp_path / "four", kill_one=True)
    assert report_many.ok, report_many.problems[:3]
    assert many == alone  # same entries, same postings, keyed by Stripe's balance transactions
    assert effects_many == effects_alone and effects_alone["events processed"] == EVENTS
