"""Shutting down never hangs: a background loop cancelled just as it is woken still stops.

Python 3.11's ``asyncio.wait_for`` returns the inner result and drops a cancellation that arrives in
the same loop turn as the result (CPython gh-86296). The app's pumps, the worker's sleep and the
sandbox's delivery loop waited on an event that way: a request that woke the mail pump right before
shutdown left the lifespan awaiting a task that had swallowed its cancel, for good (the CI run that
stopped at 98 %)."""

from __future__ import annotations

import asyncio

import pytest

from funding.clock import wait_event


async def _loop_on(event: asyncio.Event) -> None:
    while True:
        await wait_event(event, 60)
        event.clear()


@pytest.mark.parametrize("turns", range(6))
async def test_a_loop_woken_and_cancelled_in_the_same_turn_stops(turns):
    event = asyncio.Event()
    task = asyncio.create_task(_loop_on(event))
    await asyncio.sleep(0.01)  # the loop is waiting
    event.set()
    for _ in range(turns):  # one of these lands the cancel on the turn the wait completes
        await asyncio.sleep(0)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=2)
    assert task in done and task.cancelled()


async def test_wait_event_says_whether_the_event_came():
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    event.set()
    assert await wait_event(event, 5) is True


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("turns", range(6))
async def test_the_app_shuts_down_right_after_a_request_wakes_its_pumps(app, database_url, turns):
    async def serve_once() -> None:
        async with app.router.lifespan_context(app):
            app.state.kick_mail()
            app.state.kick_events()
            for _ in range(turns):
                await asyncio.sleep(0)

    task = asyncio.create_task(serve_once())
    done, _ = await asyncio.wait({task}, timeout=10)
    assert task in done, "the lifespan did not finish: a pump swallowed its cancellation"
    task.result()


def test_no_background_loop_waits_with_asyncio_wait_for():
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[2]
    found = [f"{path.relative_to(root)}:{n}" for top in ("funding", "webhooks", "stripe_sandbox")
             for path in (root / top).rglob("*.py")
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if re.search(r"\bwait_for\(", line) and not line.lstrip().startswith("#")]
    assert found == [], "use funding.clock.wait_event (or asyncio.timeout), not asyncio.wait_for: " + ", ".join(found)
