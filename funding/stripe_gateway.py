"""The only module that imports ``stripe``.

One ``StripeClient`` over ``stripe.HTTPXClient`` (respx sees its traffic), the API
version pinned here, ``STRIPE_API_BASE`` honoured, and our own retry policy, which
follows Stripe's ``Stripe-Should-Retry`` header whenever Stripe sends it:

- retried with the *same* idempotency key: connection errors and timeouts; 409 (a lock,
  or ``idempotency_key_in_use`` while our twin is in flight) and 429, after ``Retry-After``
  if given, else with back-off; a 5xx unless Stripe says ``Stripe-Should-Retry: false``;
- never retried: 400, 401, 402, 403, 404 and idempotency errors (``StripeRefused``);
- a 5xx Stripe says not to retry (it saved that answer under the key and would only replay
  it): the outcome is unknown at once (``StripeUnknown`` with ``final``);
- retries exhausted on a retryable failure: the outcome is unknown (``StripeUnknown``);
  the caller leaves its row UNKNOWN for the sweep, which looks the object up before
  creating anything (funding.payments.calls).

The SDK's own retries are off (``max_network_retries=0``) so there is one policy.
Objects come back as plain dicts.
"""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import hmac
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

import httpx
import stripe

from funding.db import digits
from funding.errors import FundingError
from funding.settings import Settings

log = logging.getLogger("funding.stripe")

API_VERSION = "2026-10-28.endive"
SANDBOX_KEY = "sk_test_entrelab_sandbox"
SANDBOX_PATH = "/_sandbox/stripe"
SIGNATURE_TOLERANCE = 300


class GatewayError(FundingError):
    """Stripe could not do what we asked (unreachable, or it refused)."""

    status = 503


@dataclass
class StripeRefused(GatewayError):
    """Stripe answered and said no: retrying the same request cannot help."""

    status = 400
    message: str
    http_status: int | None = None
    code: str | None = None
    decline_code: str | None = None
    type: str | None = None
    payment_intent: dict | None = None

    def __str__(self) -> str:
        return f"{self.http_status} {self.code or self.type}: {self.message}"


class StripeUnknown(GatewayError):
    """No definite answer after every retry: Stripe may or may not have done it.

    ``final``: Stripe said not to retry (``Stripe-Should-Retry: false``): the same key only
    replays this answer for 24 h; ``replayed``: this answer was such a replay."""

    def __init__(self, message: str, *, final: bool = False, replayed: bool = False):
        super().__init__(message)
        self.final = final
        self.replayed = replayed


def _header(exc: stripe.StripeError, name: str) -> str | None:
    headers = getattr(exc, "headers", None) or {}
    value = headers.get(name) if hasattr(headers, "get") else None
    return str(value) if value is not None else None


def stripe_id(value: Any) -> Any:
    """The id of an expandable field: Stripe gives the id, or the object once expanded."""
    return value.get("id") if isinstance(value, dict) else value


def api_base(settings: Settings) -> str:
    if settings.stripe_api_base:
        return settings.stripe_api_base
    if settings.uses_sandbox:
        return settings.base_url + SANDBOX_PATH
    return "https://api.stripe.com"


def _plain(value: Any) -> Any:
    if isinstance(value, stripe.StripeObject):
        return value.to_dict(recursive=True)
    return value


def _path(resource: str) -> str:
    """``checkout.sessions`` → ``checkout/sessions``; ``invoice_items`` → ``invoiceitems`` (Stripe's spelling)."""
    return {"invoice_items": "invoiceitems"}.get(resource, resource.replace(".", "/"))


def _refusal(exc: stripe.StripeError) -> StripeRefused:
    error = (exc.json_body or {}).get("error", {}) if isinstance(exc.json_body, dict) else {}
    return StripeRefused(
        message=error.get("message") or exc.user_message or str(exc),
        http_status=exc.http_status,
        code=error.get("code") or getattr(exc, "code", None),
        decline_code=error.get("decline_code"),
        type=error.get("type"),
        payment_intent=error.get("payment_intent"),
    )


def _retryable(exc: stripe.StripeError) -> bool:
    if isinstance(exc, stripe.APIConnectionError):
        return True
    should = (_header(exc, "stripe-should-retry") or "").lower()
    if should in ("true", "false"):  # Stripe knows: a saved answer would only be replayed
        return should == "true"
    if isinstance(exc, stripe.RateLimitError):
        return True
    if isinstance(exc, (stripe.IdempotencyError, stripe.CardError, stripe.InvalidRequestError,
                        stripe.AuthenticationError, stripe.PermissionError)):
        return False
    status = exc.http_status or 0
    return status == 409 or status >= 500


class StripeGateway:
    def __init__(
        self,
        settings: Settings,
        *,
        timeout: float = 30.0,
        max_attempts: int = 4,
        backoff: float = 0.5,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        self.livemode = settings.stripe_livemode
        self.key_prefix = settings.stripe_idempotency_prefix  # empty: the database's own (funding.payments.calls)
        self.sandbox = settings.uses_sandbox
        self.base = api_base(settings)
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.sleep = sleep
        self.http = stripe.HTTPXClient(timeout=timeout, allow_sync_methods=True)
        # httpx's pool checks every connection it holds on each request (a getpeername and a poll
        # each): the default 20 kept-alive connections cost an eighth of the webhook drain's time
        # for the 8 the drain uses. Keep what the work needs.
        self.http._client_async = httpx.AsyncClient(verify=ssl.create_default_context(cafile=stripe.ca_bundle_path),
                                                    limits=httpx.Limits(max_connections=100, max_keepalive_connections=10))
        self.client = stripe.StripeClient(
            settings.stripe_secret_key or SANDBOX_KEY,
            stripe_version=API_VERSION,
            http_client=self.http,
            base_addresses={"api": self.base},
            max_network_retries=0,
        )

    async def aclose(self) -> None:
        await self.http.close_async()

    def _service(self, resource: str):
        service = self.client.v1
        for part in resource.split("."):
            service = getattr(service, part)
        return service

    async def call(self, resource: str, method: str, *args, params: dict | None = None, key: str | None = None) -> dict:
        """``await gw.call("payment_intents", "create", params={...}, key="pledge-12-charge-1")``."""
        fn = getattr(self._service(resource), f"{method}_async")
        kwargs = {"params": params} if params is not None else {}
        if key:
            kwargs["options"] = {"idempotency_key": key}
        return await self._with_retries(f"{resource}.{method}", lambda: fn(*args, **kwargs))

    async def get(self, path: str, params: dict | None = None) -> dict:
        """A read as plain JSON (``GET /v1/…``): the same errors and retries as ``call``,
        without turning every nested object into a StripeObject and back."""
        response: stripe.StripeResponse = await self._with_retries(
            f"GET {path}", lambda: self.client.raw_request_async("get", path, **(params or {})))
        return cast(dict, response.data)  # Stripe answers a GET with a JSON object

    async def _with_retries(self, what: str, attempt_call: Callable[[], Awaitable[Any]]) -> Any:
        """What ``attempt_call`` answers, a StripeObject turned into a plain dict (a raw
        request's StripeResponse is returned as it is)."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return _plain(await attempt_call())
            except stripe.StripeError as exc:
                if not _retryable(exc):
                    if (exc.http_status or 0) >= 500:  # Stripe may have done it, and says a retry would not tell
                        replayed = (_header(exc, "idempotent-replayed") or "").lower() == "true"
                        log.warning("stripe %s: %s, not to be retried (Stripe-Should-Retry: false%s)", what, exc.http_status,
                                    ", a replayed answer" if replayed else "")
                        raise StripeUnknown(f"{what}: {type(exc).__name__}: {exc}", final=True, replayed=replayed) from exc
                    raise _refusal(exc) from exc
                if attempt >= self.max_attempts:
                    log.warning("stripe %s: no definite answer after %s attempts: %s", what, attempt, exc)
                    raise StripeUnknown(f"{what}: {type(exc).__name__}: {exc}") from exc
                delay = self.backoff * 2 ** (attempt - 1)
                retry_after = _header(exc, "retry-after")
                if retry_after and digits(retry_after):
                    delay = max(delay, float(retry_after))
                log.info("stripe %s attempt %s failed (%s); retrying in %.1fs with the same key",
                         what, attempt, type(exc).__name__, delay)
                await self.sleep(delay)

    # Shorthands for the calls the product makes.
    async def create(self, resource: str, params: dict, *, key: str) -> dict:
        if not key:
            raise ValueError("every creating call carries an idempotency key derived from our own record")
        return await self.call(resource, "create", params=params, key=key)

    async def retrieve(self, resource: str, object_id: str, *, expand: list[str] | None = None) -> dict:
        if not object_id or "/" in object_id:
            raise StripeRefused(f"invalid id {object_id!r}", http_status=404, code="resource_missing")
        return await self.get(f"/v1/{_path(resource)}/{object_id}", {"expand": expand} if expand else None)

    async def list(self, resource: str, params: dict | None = None) -> dict:
        return await self.get(f"/v1/{_path(resource)}", params or {})

    async def list_all(self, resource: str, params: dict | None = None, *, limit: int = 100):
        """Every object of a list, following ``starting_after``."""
        params = dict(params or {}, limit=limit)
        while True:
            page = await self.list(resource, params)
            for item in page["data"]:
                yield item
            if not page.get("has_more") or not page["data"]:
                return
            params["starting_after"] = page["data"][-1]["id"]

    async def search(self, resource: str, query: str) -> builtins.list[dict]:  # `list` is a method here
        return (await self.get(f"/v1/{_path(resource)}/search", {"query": query}))["data"]


# --- webhook signatures ---------------------------------------------------------------


class SignatureError(FundingError):
    pass


def verify_signature(payload: bytes, header: str | None, secret: str, *, tolerance: int = SIGNATURE_TOLERANCE,
                     now: float | None = None) -> None:
    """Stripe's scheme: ``t=<unix>,v1=<hex>[,v1=…]``; v1 = HMAC-SHA256(secret, "{t}." + raw body).

    Any matching v1 is accepted (secrets roll); a timestamp older than ``tolerance``
    seconds is refused, so is a missing or malformed header. The secret is never empty.
    """
    if not secret:
        raise SignatureError("no webhook secret configured")
    if not header:
        raise SignatureError("missing Stripe-Signature header")
    timestamp, signatures = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            timestamp = value
        elif key == "v1":
            signatures.append(value)
    # ASCII digits only (str.isdigit() also admits "²" or "①", which int() refuses).
    if not timestamp or not digits(timestamp) or len(timestamp) > 12 or not signatures:
        raise SignatureError("malformed Stripe-Signature header")
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + payload, hashlib.sha256).hexdigest()
    # Bytes, not str: compare_digest refuses non-ASCII text (a crafted header was a 500).
    if not any(hmac.compare_digest(expected.encode(), sig.encode("utf-8", "surrogateescape")) for sig in signatures):
        raise SignatureError("signature does not match the payload")
    if tolerance and abs((now if now is not None else time.time()) - int(timestamp)) > tolerance:
        raise SignatureError("signature timestamp outside the tolerance")


def sign_payload(payload: bytes, secret: str, *, timestamp: int | None = None) -> str:
    """A Stripe-Signature header for ``payload`` (tests, the sandbox, benchmarks)."""
    t = int(timestamp if timestamp is not None else time.time())
    signature = hmac.new(secret.encode(), str(t).encode() + b"." + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={signature}"
