"""POST /webhooks/stripe: verify, store, acknowledge — nothing else.

The signature is checked on the raw bytes; the event is inserted-or-ignored in the inbox
under its id and committed before the 200, so Stripe can stop retrying; processing
happens after (in-process right away, and by the worker for anything left).
A duplicate delivery is acknowledged (200), never refused: a 4xx would make Stripe retry.
"""

from __future__ import annotations

import json
import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from funding.stripe_gateway import SignatureError, verify_signature
log = logging.getLogger("funding.webhooks")
MAX_BODY = 512 * 1024


def _bad(message: str) -> Response:
    return JSONResponse({"error": message}, status_code=400)


async def stripe_webhook(request: Request) -> Response:
    settings = request.app.state.settings
    body = await request.body()
    if len(body) > MAX_BODY:
        return _bad("payload too large")
    try:
        verify_signature(body, request.headers.get("stripe-signature"), settings.stripe_webhook_secret)
    except SignatureError as exc:
        return _bad(f"invalid signature: {exc}")
    try:
        event = json.loads(body)
    except ValueError:
        return _bad("body is not JSON")
    if not isinstance(event, dict) or event.get("object") != "event" or not str(event.get("id", "")).startswith("evt_") \
            or not isinstance(event.get("type"), str) or not isinstance(event.get("data"), dict):
        return _bad("not a Stripe event")
    if bool(event.get("livemode")) != settings.stripe_livemode:
        return _bad("livemode does not match this endpoint's keys")
    try:
        inserted = await request.app.state.inbox.store(event, body.decode("utf-8"))
    except Exception:  # not stored: say so, Stripe retries
        log.exception("webhook %s could not be stored", event["id"])
        return JSONResponse({"error": "temporarily unavailable"}, status_code=503)
    if inserted:
        request.app.state.kick_events()
    return JSONResponse({"received": True, "duplicate": not inserted})


routes = [Route("/webhooks/stripe", stripe_webhook, methods=["POST"], name="stripe_webhook")]
