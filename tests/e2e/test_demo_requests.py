"""``funding demo`` seeds and plays through the sandbox: Stripe (API version
2026-10-28.endive) would refuse none of the requests it makes."""

from __future__ import annotations

import httpx

from funding.db import transaction
from funding.demo.seed import seed
from tests.support.db import run_async
from tests.support.e2e import db_call
from tests.support.refusals import describe, watch_refusals


def test_the_demo_makes_no_request_the_api_version_refuses(e2e):
    from funding.demo.run import _play

    async def seeded(sessions):
        async with transaction(sessions) as session:
            await seed(session)

    with watch_refusals() as refused:
        db_call(e2e.settings, seeded)
        run_async(lambda: _play(e2e.settings))
    assert refused == [], describe(refused)
    counted = httpx.get(f"{e2e.url}/_sandbox/stripe/_admin/refused", timeout=10).json()
    assert counted["count"] == 0, counted
