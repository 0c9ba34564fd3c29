"""POST /webhooks/stripe: verify, store, acknowledge — nothing else.

The signature is checked on the raw bytes; the event is inserted-or-ignored in the inbox
under its id and committed before the 200, so Stripe can stop retrying; processing
happens after (in-process right away, and by the worker for anything left).
A duplicate delivery is acknowledged (200), never refused: a 4xx would make Stripe retry.

Stripe can send bursts of thousands of events, so the endpoint is also served by
``WebhookFastPath``, the outermost middleware: it answers POST /webhooks/stripe in plain
ASGI, without the session, locale and CSRF layers nor the route table, none of which a
signed machine-to-machine call uses. The route below stays for everything else
(``url_for``, 405 on other methods).
"""

from __future__ import annotations

import json
import logging
from typing import TypedDict

import orjson
from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from funding.security import SECURITY_HEADERS
from funding.stripe_gateway import SignatureError, verify_signature

log = logging.getLogger("funding.webhooks")
MAX_BODY = 512 * 1024
PATH = "/webhooks/stripe"


class Answer(TypedDict, total=False):
    """The JSON body of the endpoint's answer: an error, or what became of the delivery."""

    error: str
    received: bool
    duplicate: bool


async def receive_event(state: State, body: bytes, signature: str | None) -> tuple[int, Answer]:
    """Verify and store one delivery: (HTTP status, JSON answer). Never raises."""
    settings = state.settings
    if len(body) > MAX_BODY:
        return 400, {"error": "payload too large"}
    try:
        verify_signature(body, signature, settings.stripe_webhook_secret)
    except SignatureError as exc:
        return 400, {"error": f"invalid signature: {exc}"}
    try:
        event = orjson.loads(body)  # UTF-8 only, as Stripe sends; several times faster than json
    except ValueError:
        return 400, {"error": "body is not JSON"}
    if not isinstance(event, dict) or event.get("object") != "event" or not str(event.get("id", "")).startswith("evt_") \
            or not isinstance(event.get("type"), str) or not isinstance(event.get("data"), dict):
        return 400, {"error": "not a Stripe event"}
    if bool(event.get("livemode")) != settings.stripe_livemode:
        return 400, {"error": "livemode does not match this endpoint's keys"}
    try:
        inserted = await state.inbox.store(event, body.decode("utf-8"))
    except Exception as exc:  # not stored: say so, Stripe retries
        from funding.ops.outage import is_outage

        if is_outage(exc):  # the database is away: expected, one line
            log.warning("webhook %s not stored, database unavailable: %s", event["id"], type(exc).__name__)
        else:
            log.exception("webhook %s could not be stored", event["id"])
        return 503, {"error": "temporarily unavailable"}
    if inserted:
        state.kick_events()
    return 200, {"received": True, "duplicate": not inserted}


async def stripe_webhook(request: Request) -> Response:
    status, answer = await receive_event(request.app.state, await request.body(), request.headers.get("stripe-signature"))
    return JSONResponse(answer, status_code=status)


routes = [Route(PATH, stripe_webhook, methods=["POST"], name="stripe_webhook")]

_HEADERS = [(b"content-type", b"application/json"), *SECURITY_HEADERS]
_ANSWERS = {False: b'{"received":true,"duplicate":false}', True: b'{"received":true,"duplicate":true}'}


class WebhookFastPath:
    """POST /webhooks/stripe straight to ``receive_event``; every other request to ``app``."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        chunks, kept, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            # Past the limit, keep reading (and dropping) to answer cleanly: one byte over is
            # enough for receive_event to say the payload is too large.
            chunk = message.get("body", b"")[: MAX_BODY + 1 - kept]
            chunks.append(chunk)
            kept += len(chunk)
            more = message.get("more_body", False)
        signature = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"stripe-signature"), None)
        status, answer = await receive_event(scope["app"].state, b"".join(chunks), signature)
        content = _ANSWERS[answer["duplicate"]] if status == 200 else json.dumps(answer).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [*_HEADERS, (b"content-length", str(len(content)).encode())]})
        await send({"type": "http.response.body", "body": content})
