"""A real uvicorn server (background thread, free 127.0.0.1 port) serving a fresh sandbox per test.

The sandbox is mounted at /_sandbox/stripe as in the product; the same server has a
merchant success page and a webhook receiver that records what it gets.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
import stripe
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from funding.sandbox import Sandbox, create_sandbox_app

SECRET = "whsec_test_sandbox_secret_0123456789abcdef"
MOUNT = "/_sandbox/stripe"


def pytest_collection_modifyitems(items):
    # stripe's HTTPXClient posts form bodies with data=str, which httpx deprecates: not ours to fix.
    for item in items:
        if "tests/sandbox/" in str(item.path):
            item.add_marker(pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning"))


@pytest.fixture
def anyio_backend():
    return "asyncio"


class Switch:
    """An ASGI app that forwards to whichever sandbox app the current test set."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope, receive, send):
        await self.app(scope, receive, send)


@dataclass
class Receiver:
    status: int = 200
    received: list[dict[str, Any]] = field(default_factory=list)

    async def endpoint(self, request: Request) -> PlainTextResponse:
        body = await request.body()
        self.received.append({"body": body, "signature": request.headers.get("stripe-signature"), "status": self.status})
        return PlainTextResponse("ok" if self.status < 300 else "nope", status_code=self.status)


@dataclass
class Server:
    root: str
    switch: Switch
    receiver: Receiver

    @property
    def base(self) -> str:
        return self.root + MOUNT


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def server():
    switch, receiver = Switch(), Receiver()

    async def success(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"merchant success {request.query_params.get('session_id')}")

    app = Starlette(routes=[Mount(MOUNT, app=switch), Route("/merchant/success", success), Route("/webhooks/stripe", receiver.endpoint, methods=["POST"])])
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    yield Server(f"http://127.0.0.1:{port}", switch, receiver)
    uv.should_exit = True
    thread.join(timeout=5)


def make_sandbox(server: Server, **kwargs: Any) -> Sandbox:
    kwargs.setdefault("webhook_url", server.root + "/webhooks/stripe")
    kwargs.setdefault("webhook_secret", SECRET)
    sb = Sandbox(public_base=server.base, **kwargs)
    server.switch.app = create_sandbox_app(sb)
    return sb


@pytest.fixture
def sb(server: Server) -> Sandbox:
    server.receiver.status = 200
    server.receiver.received.clear()
    return make_sandbox(server)


def make_client(server: Server, **kwargs: Any) -> stripe.StripeClient:
    timeout = kwargs.pop("timeout", 80)
    return stripe.StripeClient(
        "sk_test_sandbox",
        http_client=stripe.HTTPXClient(timeout=timeout, allow_sync_methods=True),
        base_addresses={"api": server.base},
        **kwargs,
    )


@pytest.fixture
def stripe_client(server: Server, sb: Sandbox) -> stripe.StripeClient:
    return make_client(server)


@pytest.fixture
def raw_client(server: Server, sb: Sandbox) -> stripe.StripeClient:
    """No automatic retries: faults reach the test as they are."""
    return make_client(server, max_network_retries=0)
