"""Events: creation (with the request that caused them), signing, delivery with retries.

Delivery is Stripe's: at least once, in no promised order. ``polite`` sends each event once,
as soon as it is due, in creation order. ``chaos`` (``Sandbox(delivery="chaos", seed=N)``, or
``SANDBOX_DELIVERY=chaos`` / ``SANDBOX_SEED=N``) holds each delivery back a random while,
sends a due batch concurrently and shuffled, and sends some events a second time after they
were acknowledged. Every choice is drawn from ``random.Random`` seeded with (seed, the event's
sequence number in the store, the endpoint), so a seed replays the same delays, duplicates and
tie-breaks for the same run of requests.

Each webhook endpoint has its API version: an event shows the version of the endpoint it is
sent to (and, read through the Events API, the first endpoint's, Stripe's account default
when none is set). ``pending_webhooks`` counts the endpoints that have not acknowledged the
event yet. Failed deliveries are retried with exponential back-off (1 min, 2 min, 4 min…,
doubling), for up to three days as Stripe does in live mode; then the delivery gives up.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from stripe_sandbox.state import public

if TYPE_CHECKING:
    from stripe_sandbox.sandbox import Sandbox

log = logging.getLogger("stripe_sandbox")
# Seconds between a failed attempt and the next: 1 min, doubling; twelve retries, the last 2.8 days
# after the first attempt ("up to three days with an exponential back off", Stripe's webhook docs).
BACKOFF = tuple(60 * 2**n for n in range(12))
GIVE_UP_AFTER = 3 * 86_400
DELIVERY_TIMEOUT = 10.0
MODES = ("polite", "chaos")


@dataclass(frozen=True)
class Chaos:
    """How disorderly ``chaos`` delivery is (seconds of sandbox time; probabilities)."""

    max_delay: float = 1.5  # each delivery is held back uniform(0, max_delay)
    duplicate: float = 0.3  # chance that an acknowledged event is sent once more
    duplicate_delay: tuple[float, float] = (0.1, 2.0)  # ... that long after the acknowledgement


@dataclass(frozen=True)
class Endpoint:
    url: str | None
    secret: str
    api_version: str


def delivery_mode(mode: str | None = None) -> str:
    """``mode``, or ``SANDBOX_DELIVERY`` from the environment, or ``polite``; checked."""
    mode = mode or os.environ.get("SANDBOX_DELIVERY", "").strip() or "polite"
    if mode not in MODES:
        raise ValueError(f"delivery: one of {', '.join(MODES)}, not {mode!r}")
    return mode


def delivery_seed(seed: int | None = None) -> int:
    """``seed``, or ``SANDBOX_SEED`` from the environment, or a fresh one (logged, to replay a run)."""
    if seed is not None:
        return int(seed)
    raw = os.environ.get("SANDBOX_SEED", "").strip()
    if raw:
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"SANDBOX_SEED: an integer, not {raw!r}") from None
    return random.SystemRandom().randrange(2**31)


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


def _rng(sb: Sandbox, event: dict[str, Any], index: int, purpose: str) -> random.Random:
    return random.Random(f"{sb.seed}:{event['_seq']}:{index}:{purpose}")  # noqa: S311  (test traffic, not secrets)


def _new_delivery(sb: Sandbox, event: dict[str, Any], index: int, endpoint: Endpoint, now: int) -> dict[str, Any]:
    delivery: dict[str, Any] = {"attempts": 0, "next_at": now, "last_status": None, "delivered_at": None,
                                "url": endpoint.url, "endpoint": index}
    if sb.delivery == "chaos":
        rng = _rng(sb, event, index, "first")
        delivery["next_at"] = now + round(rng.uniform(0, sb.chaos.max_delay), 3)
        if rng.random() < sb.chaos.duplicate:
            delivery["duplicate_after"] = round(rng.uniform(*sb.chaos.duplicate_delay), 3)
    return delivery


def deliveries(event: dict[str, Any]) -> list[dict[str, Any]]:
    """The event's delivery to each endpoint (the first endpoint's is ``_delivery``)."""
    first = event.get("_delivery")
    return ([first] if first else []) + list(event.get("_also", ()))


def _pending(event: dict[str, Any]) -> int:
    return sum(1 for d in deliveries(event) if not d.get("delivered_at"))


def create_event(sb: Sandbox, type: str, obj: dict[str, Any], previous: dict[str, Any] | None = None) -> dict[str, Any]:
    now = sb.now()
    request = sb.request_context or {}
    endpoints = sb.endpoints
    event: dict[str, Any] = {
        "id": sb.store.new_id("event"),
        "object": "event",
        # The endpoint's version, not the request's Stripe-Version header.
        "api_version": endpoints[0].api_version if endpoints else sb.api_version,
        "created": now,
        "data": {"object": sb.view(obj)},
        "livemode": False,
        "pending_webhooks": len(endpoints),
        "request": {"id": request.get("id"), "idempotency_key": request.get("idempotency_key")},
        "type": type,
    }
    if previous is not None:
        event["data"]["previous_attributes"] = public(previous)
    event = sb.store.put("event", event)
    if endpoints:
        event["_delivery"] = _new_delivery(sb, event, 0, endpoints[0], now)
        if len(endpoints) > 1:
            event["_also"] = [_new_delivery(sb, event, i, e, now) for i, e in enumerate(endpoints[1:], 1)]
    return event


def signature_header(payload: str, secret: str, timestamp: int | None = None) -> str:
    """``t=<unix>,v1=<hex HMAC-SHA256(secret, "{t}.{payload}")>``, as stripe.WebhookSignature checks it."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def _is_due(delivery: dict[str, Any], now: float) -> bool:
    if delivery.get("given_up"):
        return False
    if delivery["delivered_at"]:
        return delivery.get("duplicate_at") is not None and delivery["duplicate_at"] <= now
    return delivery["next_at"] <= now


def next_due(sb: Sandbox) -> float | None:
    """When the next delivery (first attempt, retry or chaotic twin) falls due; None: nothing waits."""
    soonest = None
    for event in sb.store.data["objects"]["event"].values():
        for delivery in deliveries(event):
            if delivery.get("given_up"):
                continue
            at = delivery.get("duplicate_at") if delivery["delivered_at"] else delivery["next_at"]
            if at is not None and (soonest is None or at < soonest):
                soonest = at
    return soonest


def _due(sb: Sandbox) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    now = sb.precise_now()
    due = []
    with sb.lock:
        for event in sb.store.data["objects"]["event"].values():
            for delivery in deliveries(event):
                key = (event["id"], delivery.get("endpoint", 0))
                if key not in sb._in_flight and _is_due(delivery, now):
                    sb._in_flight.add(key)
                    due.append((event, delivery))
    if sb.delivery == "chaos" and len(due) > 1:  # a batch goes out in an order no one promised
        due.sort(key=lambda pair: _rng(sb, pair[0], pair[1].get("endpoint", 0), f"order{pair[1]['attempts']}").random())
    return due


def _endpoint(sb: Sandbox, delivery: dict[str, Any]) -> Endpoint | None:
    index = delivery.get("endpoint", 0)
    return sb.endpoints[index] if index < len(sb.endpoints) else None


async def _send(sb: Sandbox, client: httpx.AsyncClient, event: dict[str, Any], delivery: dict[str, Any]) -> bool:
    endpoint = _endpoint(sb, delivery)
    with sb.lock:
        shown = public(event)
        shown["pending_webhooks"] = _pending(event)
        if endpoint is not None:
            shown["api_version"] = endpoint.api_version
        body = json.dumps(shown, indent=2, ensure_ascii=False)
        url = delivery.get("url") or (endpoint.url if endpoint else None) or sb.webhook_url
    secret = endpoint.secret if endpoint is not None else sb.webhook_secret
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Stripe-Signature": signature_header(body, secret),
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
        _record(sb, event, delivery, status, error, ok)
    return ok


async def deliver_due(sb: Sandbox) -> int:
    due = _due(sb)
    if not due:
        return 0
    try:
        async with httpx.AsyncClient(timeout=DELIVERY_TIMEOUT, trust_env=False) as client:
            if sb.delivery == "chaos":  # Stripe sends concurrently: a handler meets its neighbours mid-flight
                results = await asyncio.gather(*(_send(sb, client, e, d) for e, d in due))
            else:
                results = [await _send(sb, client, e, d) for e, d in due]
    finally:
        with sb.lock:
            for event, delivery in due:
                sb._in_flight.discard((event["id"], delivery.get("endpoint", 0)))
            sb.save()
    return sum(results)


def _record(sb: Sandbox, event: dict[str, Any], delivery: dict[str, Any], status: int | None, error: str | None, ok: bool) -> None:
    now = sb.now()
    if delivery["delivered_at"]:  # the duplicate of an acknowledged delivery: sent once, whatever the answer
        delivery["duplicate_at"] = None
        delivery["duplicates"] = delivery.get("duplicates", 0) + 1
        return
    delivery["attempts"] += 1
    delivery["last_status"] = status
    delivery["last_error"] = error
    delivery["last_attempt_at"] = now
    if ok:
        delivery["delivered_at"] = now
        if delivery.get("duplicate_after") is not None:
            delivery["duplicate_at"] = sb.precise_now() + delivery.pop("duplicate_after")
        event["pending_webhooks"] = _pending(event)
        return
    # Every retry of the schedule is made, even when the sandbox clock jumped past the three days
    # (a jump never drops an event on its first failure).
    if delivery["attempts"] > len(BACKOFF):
        delivery["given_up"] = True
        log.warning("sandbox webhook %s %s: giving up after %s attempts (last: %s)", event["id"], event["type"],
                    delivery["attempts"], status or error)
        return
    wait = BACKOFF[delivery["attempts"] - 1]
    delivery["next_at"] = now + wait
    log.info("sandbox webhook %s %s: attempt %s failed (%s), retry in %ss", event["id"], event["type"], delivery["attempts"], status or error, wait)


def delivery_info(event: dict[str, Any]) -> dict[str, Any] | None:
    return event.get("_delivery")
