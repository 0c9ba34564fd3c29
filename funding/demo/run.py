"""``funding demo``: migrate, seed once, then serve the app (and the offline Stripe sandbox)."""

from __future__ import annotations

import asyncio
import socket

import uvicorn

from funding.db import create_engine, session_factory, transaction
from funding.demo.seed import USERS, is_seeded, seed
from funding.migrate import upgrade
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
    from funding.auth.models import User
    from funding.auth.service import issue_link
    from sqlalchemy import select

    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    links = []
    try:
        async with transaction(sessions) as session:
            if not await is_seeded(session):
                await seed(session)
                print("demo data created", flush=True)
            for email, name, role in USERS:
                user = await session.scalar(select(User).where(User.email == email))
                if user is not None:
                    links.append((f"{role} ({name})", await issue_link(session, user, settings)))
    finally:
        await engine.dispose()
    return links


def run_demo(settings: Settings, *, host: str, port: int, reset: bool = False) -> int:
    from funding.app import create_app
    from funding.cli import CommandError

    if not _port_free(host, port):
        raise CommandError(f"port {port} is already in use: try `funding demo --port {port + 1}`")
    settings = settings.with_(base_url=f"http://{host}:{port}")
    if reset and settings.database_url.startswith("sqlite"):
        from pathlib import Path

        from sqlalchemy.engine import make_url

        path = make_url(settings.database_url).database
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    upgrade(settings.database_url)
    links = asyncio.run(_prepare(settings))
    print("", flush=True)
    print(f"Entre-Lab Funding demo: {settings.base_url}/", flush=True)
    print("Log in with these single-use links (valid a few minutes; more from /login → /dev/mailbox):", flush=True)
    for who, link in links:
        print(f"  {who}: {link}", flush=True)
    print("Stop with Ctrl+C.", flush=True)
    config = uvicorn.Config(create_app(settings), host=host, port=port, log_level="warning", proxy_headers=False)
    uvicorn.Server(config).run()
    return 0
