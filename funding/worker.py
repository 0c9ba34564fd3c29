"""The background worker (Procfile ``worker:``): runs every job in a loop.

Jobs are idempotent and claim their rows, so several workers, or a worker and the web
process, can run side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time

from funding.clock import wait_event
from funding.db import create_engine
from funding.mail.service import send_pending
from funding.ops.heartbeat import Heartbeat
from funding.ops.logs import configure as configure_logs
from funding.ops.logs import job_line
from funding.ops.outage import is_outage
from funding.sessions import sessions_for
from funding.settings import Settings
from funding.stripe_gateway import StripeGateway

log = logging.getLogger("funding.worker")


def jobs(gw: StripeGateway):
    """Every periodic job, in the order they run. The worker is a composition root: it
    is where `webhooks` is wired in."""
    from funding.domains import parts
    from funding.payments.calls import resolve_unknown
    from funding.payments.reconcile import reconcile_job
    from webhooks.processing import drain

    domain_jobs = [(name, _with_gateway(fn, gw)) for module in parts("jobs") for name, fn in module.JOBS]
    return [
        ("webhook events", lambda sessions, settings: drain(sessions, gw, batch=settings.webhook_batch)),
        ("unknown Stripe requests", lambda sessions, settings: resolve_unknown(sessions, settings, gw)),
        ("payout reconciliation", lambda sessions, settings: reconcile_job(sessions, settings, gw)),
        *domain_jobs,
        ("emails", send_pending),
    ]


def _with_gateway(fn, gw: StripeGateway):
    """A domain's job ``fn(sessions, settings, gw)`` as a job of the round, ``job(sessions, settings)``."""
    return lambda sessions, settings: fn(sessions, settings, gw)


async def run_once(sessions, settings: Settings, gw: StripeGateway, *, worker: str = "") -> dict[str, int]:
    done = {}
    for name, job in jobs(gw):
        started = time.perf_counter()
        try:
            done[name] = await job(sessions, settings)
        except Exception as exc:
            if is_outage(exc):  # the database is away: expected, one line; the next round tries again
                log.warning("job %s: database unavailable (%s); it runs again next round", name, type(exc).__name__)
            else:
                log.exception("job %s failed; it runs again next round", name)
            done[name] = -1
        if settings.log_format == "json":
            job_line(worker, name, done[name], time.perf_counter() - started)
    return done


async def run_worker(settings: Settings, *, once: bool = False) -> None:
    configure_logs(settings.log_format)
    engine = create_engine(settings.database_url, **settings.engine_options)
    sessions = sessions_for(engine, settings)
    gw = StripeGateway(settings)
    beat = Heartbeat(engine, "worker", every=settings.heartbeat_seconds, stale=settings.heartbeat_stale_seconds)
    await beat.start()
    log.info("worker %s started", beat.id)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # no signal handlers here (Windows, a thread)
            loop.add_signal_handler(sig, stop.set)
    try:
        while True:
            await run_once(sessions, settings, gw, worker=beat.id)
            if once:
                break
            if await wait_event(stop, settings.worker_poll_seconds):
                break
    finally:
        await beat.stop()
        await gw.aclose()
        await engine.dispose()
