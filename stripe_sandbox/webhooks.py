"""Events: creation (with the request that caused them), signing, delivery with retries."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from typing import TYPE_CHECKING, Any

import httpx

from stripe_sandbox.state import public

if TYPE_CHECKING:
    from stripe_sandbox.sandbox import Sandbox

log = logging.getLogger("stripe_sandbox")
BACKOFF = (1, 5, 30, 120, 600, 1800, 3600)  # seconds after attempt n; then every hour
GIVE_UP_AFTER = 3 * 86_400
DELIVERY_TIMEOUT = 10.0


def diff(old: Any, new: Any) -> Any:
    """Stripe's previous_attributes: the old values of what changed (recursing into hashes)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: dict[str, Any] = {}
        for key in old.keys() | new.keys():
            if key.startswith("_"):
                continue
            if key not in old:
                out[key] = None
            elif key not in new or old[key] != new[key]:
                out[key] = diff(old[key], new.get(key)) if isinstance(old[key], dict) and isinstance(new.get(key), dict) else old[key]
        return out
    return old


def create_event(sb: Sandbox, type: str, obj: dict[str, Any], previous: dict[str, Any] | None = None) -> dict[str, Any]:
    now = sb.now()
    request = sb.request_context or {}
    event: dict[str, Any] = {
        "id": sb.store.new_id("event"),
        "object": "event",
        "api_version": request.get("api_version") or sb.api_version,
        "created": now,
        "data": {"object": sb.view(obj)},
        "livemode": False,
        "pending_webhooks": 1 if sb.webhook_url else 0,
        "request": {"id": request.get("id"), "idempotency_key": request.get("idempotency_key")},
        "type": type,
    }
    if previous is not None:
        event["data"]["previous_attributes"] = public(previous)
    if sb.webhook_url:
        event["_delivery"] = {"attempts": 0, "next_at": now, "last_status": None, "delivered_at": None, "url": sb.webhook_url}
    return sb.store.put("event", event)


def signature_header(payload: str, secret: str, timestamp: int | None = None) -> str:
    """``t=<unix>,v1=<hex HMAC-SHA256(secret, "{t}.{payload}")>``, as stripe.WebhookSignature checks it."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def _due(sb: Sandbox) -> list[dict[str, Any]]:
    now = sb.now()
    due = []
    with sb.lock:
        for event in sb.store.data["objects"]["event"].values():
            delivery = event.get("_delivery")
            if not delivery or delivery["delivered_at"] or delivery.get("given_up") or event["id"] in sb._in_flight:
                continue
            if delivery["next_at"] <= now:
                sb._in_flight.add(event["id"])
                due.append(event)
    return due


async def deliver_due(sb: Sandbox) -> int:
    events = _due(sb)
    if not events:
        return 0
    delivered = 0
    try:
        async with httpx.AsyncClient(timeout=DELIVERY_TIMEOUT, trust_env=False) as client:
            for event in events:
                with sb.lock:
                    body = json.dumps(public(event), indent=2, ensure_ascii=False)
                    url = event["_delivery"].get("url") or sb.webhook_url
                headers = {
                    "Content-Type": "application/json; charset=utf-8",
                    "Stripe-Signature": signature_header(body, sb.webhook_secret),
                    "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks) sandbox",
                }
                status: int | None = None
                error = None
                if not url:  # a failed attempt like any other, not a TypeError that stops the whole batch
                    error = "no webhook URL: the event records none and the sandbox has none"
                else:
                    try:
                        response = await client.post(url, content=body.encode("utf-8"), headers=headers)
                        status = response.status_code
                    except httpx.HTTPError as exc:
                        error = f"{type(exc).__name__}: {exc}"
                ok = status is not None and 200 <= status < 300
                with sb.lock:
                    _record(sb, event, status, error, ok)
                delivered += ok
    finally:
        with sb.lock:
            for event in events:
                sb._in_flight.discard(event["id"])
            sb.save()
    return delivered


def _record(sb: Sandbox, event: dict[str, Any], status: int | None, error: str | None, ok: bool) -> None:
    delivery = event["_delivery"]
    now = sb.now()
    delivery["attempts"] += 1
    delivery["last_status"] = status
    delivery["last_error"] = error
    delivery["last_attempt_at"] = now
    if ok:
        delivery["delivered_at"] = now
        event["pending_webhooks"] = 0
        return
    # Stripe retries for three days. Sandbox time jumps when its clock is advanced, so also
    # require the whole back-off schedule: a jump never drops an event on its first failure.
    if now - event["created"] >= GIVE_UP_AFTER and delivery["attempts"] >= len(BACKOFF):
        delivery["given_up"] = True
        log.warning("sandbox webhook %s %s: giving up after %s attempts (last: %s)", event["id"], event["type"],
                    delivery["attempts"], status or error)
        return
    wait = BACKOFF[min(delivery["attempts"], len(BACKOFF)) - 1]
    delivery["next_at"] = now + wait
    log.info("sandbox webhook %s %s: attempt %s failed (%s), retry in %ss", event["id"], event["type"], delivery["attempts"], status or error, wait)


def delivery_info(event: dict[str, Any]) -> dict[str, Any] | None:
    return event.get("_delivery")
