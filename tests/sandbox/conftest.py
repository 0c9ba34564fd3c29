"""A real uvicorn server (background thread, free 127.0.0.1 port) serving a fresh sandbox per test.

The sandbox is mounted at /_sandbox/stripe as in the product; the same server has a
merchant success page and a webhook receiver that records what it gets.
"""

from __future__ import annotations

import threading
import time

import pytest
import stripe
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from stripe_sandbox import Sandbox
from tests.support.live import free_port
from tests.support.sandbox import MOUNT, Receiver, Server, Switch, make_client, make_sandbox


def pytest_collection_modifyitems(items):
    # stripe's HTTPXClient posts form bodies with data=str, which httpx deprecates: not ours to fix.
    for item in items:
        if "tests/sandbox/" in str(item.path):
            item.add_marker(pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning"))


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="session")
def server():
    switch, receiver = Switch(), Receiver()

    async def success(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"merchant success {request.query_params.get('session_id')}")

    app = Starlette(routes=[Mount(MOUNT, app=switch), Route("/merchant/success", success), Route("/webhooks/stripe", receiver.endpoint, methods=["POST"])])
    port = free_port()
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


@pytest.fixture
def sb(server: Server) -> Sandbox:
    server.receiver.status = 200
    server.receiver.received.clear()
    return make_sandbox(server)


@pytest.fixture
def stripe_client(server: Server, sb: Sandbox) -> stripe.StripeClient:
    return make_client(server)


@pytest.fixture
def raw_client(server: Server, sb: Sandbox) -> stripe.StripeClient:
    """No automatic retries: faults reach the test as they are."""
    return make_client(server, max_network_retries=0)
