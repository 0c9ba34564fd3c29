"""``funding demo``: migrate, seed once, then serve the app with the offline Stripe sandbox
and run the worker's jobs beside it (one process, like a small Procfile)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from funding.db import create_engine, transaction
from funding.demo.seed import USERS, is_seeded, seed
from funding.errors import FundingError
from funding.migrate import upgrade
from funding.sessions import sessions_for
from funding.settings import Settings


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


async def _prepare(settings: Settings) -> list[tuple[str, str]]:
    from sqlalchemy import select

    from funding.auth.models import User
    from funding.auth.service import issue_link

    engine = create_engine(settings.database_url)
    sessions = sessions_for(engine, settings)
    links = []
    try:
        async with transaction(sessions) as session:
            if not await is_seeded(session):
                await seed(session)
                print("demo data created", flush=True)
            for email, name, role, where in USERS:
                user = await session.scalar(select(User).where(User.email == email))
                if user is not None:
                    what = {"main": role, "partner": f"{role} of the partner association",
                            "network": f"{role} of the whole network"}[where]
                    links.append((f"{what} ({name})", await issue_link(session, user, settings)))
    finally:
        await engine.dispose()
    return links


async def _play(settings: Settings) -> None:
    """Each domain's demo activity, in domain order (each plays only on its first run)."""
    from funding.domains import parts
    from funding.stripe_gateway import StripeGateway

    engine = create_engine(settings.database_url)
    gw = StripeGateway(settings)
    try:
        for module in parts("demo"):
            if hasattr(module, "play"):
                await module.play(settings, gw, sessions_for(engine, settings))
    finally:
        await gw.aclose()
        await engine.dispose()


def _sidecar(settings: Settings) -> None:
    """Once the server answers: play the demo's activity (first run), then run the worker."""
    from funding.worker import run_worker

    for _ in range(200):
        try:
            if httpx.get(f"{settings.base_url}/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    asyncio.run(_play(settings))
    asyncio.run(run_worker(settings))


def run_demo(settings: Settings, *, host: str, port: int, reset: bool = False) -> int:
    from sqlalchemy.engine import make_url

    from funding.demo.compose import create_demo_app, sandbox_for

    if not _port_free(host, port):
        raise FundingError(f"port {port} is already in use: try `funding demo --port {port + 1}`")
    settings = settings.with_(base_url=f"http://{host}:{port}")
    state = None
    database = make_url(settings.database_url).database
    if settings.database_url.startswith("sqlite") and database:  # a file (sqlite:// alone is in memory)
        db_path = Path(database)
        state = db_path.with_name(db_path.stem + "-stripe-sandbox.json")
        if reset:
            for path in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm"), state):
                path.unlink(missing_ok=True)
    upgrade(settings.database_url)
    links = asyncio.run(_prepare(settings))
    sandbox = sandbox_for(settings, state_path=state)
    print("", flush=True)
    print(f"Entre-Lab Funding demo: {settings.base_url}/", flush=True)
    print("Log in with these single-use links: open one, then press « Me connecter » "
          "(valid a few minutes; more from /login → /dev/mailbox):", flush=True)
    for who, link in links:
        print(f"  {who}: {link}", flush=True)
    print(f"Donate with the test card 4242 4242 4242 4242: {settings.base_url}/soutenir", flush=True)
    print("The offline Stripe sandbox is a development tool: no real money moves. Stop with Ctrl+C.", flush=True)
    threading.Thread(target=_sidecar, args=(settings,), daemon=True, name="demo-worker").start()
    config = uvicorn.Config(create_demo_app(settings, sandbox=sandbox), host=host, port=port, log_level="warning")
    uvicorn.Server(config).run()
    return 0
