"""The ``/v1`` HTTP surface: auth, form decoding, faults, idempotency, routing, lists and search."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import re
import secrets
from collections.abc import Callable, Set
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from stripe_sandbox import validation
from stripe_sandbox.encoding import Params, decode_pairs
from stripe_sandbox.errors import StripeError, invalid
from stripe_sandbox.views import expand

if TYPE_CHECKING:
    from stripe_sandbox.sandbox import Sandbox

log = logging.getLogger("stripe_sandbox")
Handler = Callable[..., Any]


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler


ROUTES: list[Route] = []


def route(method: str, path: str) -> Callable[[Handler], Handler]:
    """Register ``handler(sb, p, **path_params) -> body`` (or ``(status, body)``) for ``method path``."""
    regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path) + "$")

    def register(handler: Handler) -> Handler:
        ROUTES.append(Route(method, regex, handler))
        return handler

    return register


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body, indent=2, ensure_ascii=False), status_code=status, media_type="application/json", headers=headers)


def _authenticate(request: Request) -> str:
    header = request.headers.get("authorization", "")
    key = ""
    if header.lower().startswith("bearer "):
        key = header[7:].strip()
    elif header.lower().startswith("basic "):
        try:
            key = base64.b64decode(header[6:]).decode().split(":", 1)[0]
        except ValueError:
            key = ""
    if not key:
        raise StripeError(
            401,
            "You did not provide an API key. You need to provide your API key in the Authorization header, "
            "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
        )
    if key.startswith(("sk_live_", "rk_live_", "pk_live_")):
        raise StripeError(401, "Invalid API Key provided: the offline Stripe sandbox never accepts live keys (sk_live_…): it cannot move real money.")
    if not key.startswith(("sk_test_", "rk_test_")):
        masked = key[:8] + "*" * max(len(key) - 12, 0) + key[-4:]
        raise StripeError(401, f"Invalid API Key provided: {masked}")
    return key


async def _params(request: Request) -> dict[str, Any]:
    pairs = parse_qsl(request.url.query, keep_blank_values=True)
    if request.method == "POST":
        body = (await request.body()).decode("utf-8")
        content_type = request.headers.get("content-type", "")
        if body and "json" in content_type:
            raise invalid("The sandbox, like Stripe's v1 API, takes application/x-www-form-urlencoded bodies.")
        pairs += parse_qsl(body, keep_blank_values=True)
    return decode_pairs(pairs)


async def dispatch(request: Request) -> Response:
    """One API request, with Stripe's idempotency: a key's first result (an object, a card error,
    or a 500 that followed the work) is saved and replayed for 24 h of sandbox time
    (``Idempotent-Replayed: true``); a twin sent while the first is in flight gets 409
    ``idempotency_key_in_use``; another request under a used key gets 400. Errors carry
    ``Stripe-Should-Retry`` (and ``Retry-After`` for 409 locks and 429s)."""
    sb: Sandbox = request.app.state.sandbox
    method = request.method
    path = "/v1/" + request.path_params["path"]
    request_id = "req_" + secrets.token_hex(7)
    version = request.headers.get("stripe-version") or sb.api_version
    key = request.headers.get("idempotency-key") if method == "POST" else None
    headers = {"Request-Id": request_id, "Stripe-Version": version}
    if key:
        headers["Idempotency-Key"] = key
    try:
        _authenticate(request)
        fault = sb.take_fault(method, path)
        if fault == "error_500":
            raise StripeError(500, "An unknown error occurred (injected by the sandbox).", type="api_error",
                              headers={SHOULD_RETRY: "true"})
        if fault == "error_429":
            raise StripeError(429, "Too many requests hit the API too quickly (injected by the sandbox).", code="rate_limit",
                              headers={SHOULD_RETRY: "true", "Retry-After": "1"})
        params = await _params(request)
        try:
            validation.check(method, path, params)
        except StripeError as exc:
            refusal = {"method": method, "path": path, "code": exc.code, "param": exc.param, "message": exc.message}
            with sb.lock:
                sb.refused.append(refusal)
                validation.REFUSED.append(refusal)
            log.warning("sandbox refused %s %s: %s", method, path, exc.message)
            raise
        if key:
            with sb.lock:
                if key in sb.keys_in_flight:
                    raise StripeError(
                        409,
                        f"There is currently another in-progress request using this Stripe-Idempotency-Key ('{key}'). "
                        "Please try again later.",
                        type="idempotency_error", code="idempotency_key_in_use",
                        headers={SHOULD_RETRY: "true", "Retry-After": "1"},
                    )
                sb.keys_in_flight.add(key)
    except StripeError as exc:
        return _json(exc.status, with_log_url(exc.body(), request_id), headers | _retry_headers(exc.status, saved=False) | exc.headers)
    try:
        if fault == "delay_before":  # the work takes a while: the key stays locked meanwhile
            await asyncio.sleep(sb.fault_timeout)
        status, body, replayed = _execute(sb, method, path, params, key, request_id, version, fault)
    finally:
        if key:
            with sb.lock:
                sb.keys_in_flight.discard(key)
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    body = with_log_url(body, request_id)
    if fault == "timeout_after":
        await _hold(request, sb.fault_timeout)
    return _json(status, body, headers | _retry_headers(status, saved=bool(key)))


SHOULD_RETRY = "Stripe-Should-Retry"


def with_log_url(body: Any, request_id: str) -> Any:
    """Every Stripe error carries ``request_log_url`` (the request in the Dashboard's logs)."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict) and "request_log_url" not in body["error"]:
        body = {**body, "error": {**body["error"], "request_log_url": f"https://dashboard.stripe.com/test/logs/{request_id}"}}
    return body


def _retry_headers(status: int, *, saved: bool) -> dict[str, str]:
    """Stripe-Should-Retry on an error: a saved result would only be replayed, a refusal would
    be refused again; a 5xx whose result was not saved may be retried."""
    if status < 400:
        return {}
    return {SHOULD_RETRY: "true" if status >= 500 and not saved else "false"}


async def _hold(request: Request, seconds: float) -> None:
    """Sit on the answer (the client times out); stop early once the client has gone."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        if await request.is_disconnected():
            return
        await asyncio.sleep(min(0.25, left))


def _saved(status: int) -> bool:
    """What Stripe keeps under a key: every result of a request that started its work — the
    object, a card's refusal (402), a 5xx. A request refused at validation (400, 404) is not kept."""
    return 200 <= status < 300 or status == 402 or status >= 500


def _execute(sb: Sandbox, method: str, path: str, params: dict[str, Any], key: str | None, request_id: str, version: str,
             fault: str | None = None) -> tuple[int, Any, bool]:
    with sb.lock:
        sb.tick()
        fingerprint = None
        if key:
            sb.forget_idempotency_keys()
            fingerprint = hashlib.sha256(json.dumps([method, path, params], sort_keys=True).encode()).hexdigest()
            record = sb.store.idempotency.get(key)
            if record is not None:
                if record["fingerprint"] != fingerprint:
                    error = StripeError(
                        400,
                        f"Keys for idempotent requests can only be used with the same parameters they were first used with. "
                        f"Try using a key other than '{key}' if you meant to execute a different request.",
                        type="idempotency_error",
                    )
                    return error.status, error.body(), False
                return record["status"], record["body"], True
        sb.request_context = {"id": request_id, "idempotency_key": key, "api_version": version}
        try:
            from stripe_sandbox.clocks import clock_of_request

            with sb.on_clock(clock_of_request(sb, method, path, params)):  # a customer's test clock, if it has one
                status, body = _call(sb, method, path, params)
        except StripeError as exc:
            status, body = exc.status, exc.body()
        except Exception:  # a sandbox bug: answer like Stripe's 500s rather than with a traceback page
            log.exception("sandbox: %s %s failed", method, path)
            status, body = 500, StripeError(500, "An unexpected error occurred in the Stripe sandbox (see its log).", type="api_error").body()
        finally:
            sb.request_context = None
        if fault == "error_500_after" and status < 500:  # the work is done; the answer is an error, saved as such
            status, body = 500, StripeError(500, "An unknown error occurred after the request was processed (injected by the sandbox).",
                                            type="api_error").body()
        body = with_log_url(body, request_id)  # saved with it: a replay shows the first request's log
        if key and _saved(status):
            sb.store.idempotency[key] = {"fingerprint": fingerprint, "status": status, "body": body, "created": sb.now()}
        if method != "GET":
            sb.save()
        return status, body, False


def _call(sb: Sandbox, method: str, path: str, params: dict[str, Any]) -> tuple[int, Any]:
    matched_path = False
    for candidate in ROUTES:
        match = candidate.pattern.match(path)
        if not match:
            continue
        matched_path = True
        if candidate.method != method:
            continue
        p = Params(params)
        paths = p.strings("expand")
        result = candidate.handler(sb, p, **match.groupdict())
        status, body = result if isinstance(result, tuple) else (200, result)
        if paths and isinstance(body, dict):
            expand(sb, body, paths)
        return status, body
    if matched_path:
        raise StripeError(404, f"Unrecognized request URL ({method}: {path}). The sandbox does not support this method on this URL.")
    raise StripeError(
        404,
        f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/ "
        "(the offline sandbox implements only what the product uses).",
    )


# lists ---------------------------------------------------------------------

LIST_PARAMS = {"limit", "starting_after", "ending_before", "created"}


def created_filter(p: Params, key: str = "created") -> Callable[[int], bool]:
    raw = p.raw(key)
    if raw is None:
        return lambda value: True
    if isinstance(raw, str):
        exact = p.int(key)
        return lambda value: value == exact
    bounds = p.dict(key)
    bounds.check_known({"gt", "gte", "lt", "lte"})
    gt, gte, lt, lte = (bounds.int(k) for k in ("gt", "gte", "lt", "lte"))
    return lambda v: (gt is None or v > gt) and (gte is None or v >= gte) and (lt is None or v < lt) and (lte is None or v <= lte)


def list_response(
    sb: Sandbox,
    kind: str,
    p: Params,
    url: str,
    where: Callable[[dict[str, Any]], bool] | None = None,
    *,
    extra: Set[str] = frozenset(),
) -> dict[str, Any]:
    p.check_known(LIST_PARAMS | set(extra))
    in_range = created_filter(p)
    objects = [
        o for o in sb.store.all(kind)
        if not o.get("_inline") and not o.get("_deleted") and in_range(_created(o)) and (where is None or where(o))
    ]
    objects.sort(key=lambda o: (_created(o), o["_seq"]), reverse=True)
    page, has_more = paginate(objects, p)
    return {"object": "list", "data": [sb.view(o) for o in page], "has_more": has_more, "url": url}


def _created(obj: dict[str, Any]) -> int:
    return obj["created"] if "created" in obj else obj["date"]  # invoice items have a date instead


def paginate(objects: list[dict[str, Any]], p: Params) -> tuple[list[dict[str, Any]], bool]:
    limit = p.int("limit", default=10)
    if not 1 <= limit <= 100:
        raise invalid("Invalid limit: must be between 1 and 100", "limit")
    ids = [o["id"] for o in objects]
    after, before = p.str("starting_after"), p.str("ending_before")
    if after:
        if after not in ids:
            raise StripeError(400, f"No such object: '{after}'", param="starting_after", code="resource_missing")
        start = ids.index(after) + 1
        return objects[start : start + limit], len(objects) > start + limit
    if before:
        if before not in ids:
            raise StripeError(400, f"No such object: '{before}'", param="ending_before", code="resource_missing")
        end = ids.index(before)
        start = max(0, end - limit)
        return objects[start:end], start > 0
    return objects[:limit], len(objects) > limit


# search --------------------------------------------------------------------

_CLAUSE = re.compile(
    r"""\s*(?P<neg>-)?(?P<field>metadata\[(?P<q>['"])(?P<key>.*?)(?P=q)\]|[A-Za-z_][\w.]*)\s*"""
    r"""(?P<op>>=|<=|:|>|<|~)\s*(?P<value>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\s]+)\s*"""
)


def parse_query(query: str) -> tuple[str, list[dict[str, Any]]]:
    parts = re.split(r"\s+(AND|OR|and|or)\s+", query.strip())
    clauses, joins = parts[::2], {j.upper() for j in parts[1::2]}
    if len(joins) > 1:
        raise invalid("Search queries cannot mix AND and OR.", "query")
    parsed = []
    for text in clauses:
        match = _CLAUSE.fullmatch(text)
        if not match:
            raise invalid(f"Invalid search query: could not parse `{text}`. Use e.g. metadata['key']:'value' AND status:'active'.", "query")
        value = match["value"]
        if value[0] in "'\"":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        elif value == "null":
            value = None
        parsed.append({"neg": bool(match["neg"]), "field": match["field"], "key": match["key"], "op": match["op"], "value": value})
    return (joins.pop() if joins else "AND"), parsed


def _matches(obj: dict[str, Any], clause: dict[str, Any]) -> bool:
    if clause["key"] is not None:
        actual = (obj.get("metadata") or {}).get(clause["key"])
    else:
        actual = obj
        for part in clause["field"].split("."):
            actual = actual.get(part) if isinstance(actual, dict) else None
    expected, op = clause["value"], clause["op"]
    if op == ":":
        if expected is None:
            result = actual is None
        elif isinstance(actual, bool) or (clause["field"] == "email" and actual):
            result = str(actual).lower() == str(expected).lower()
        else:
            result = actual is not None and str(actual) == str(expected)
    elif op == "~":
        result = actual is not None and str(expected).lower() in str(actual).lower()
    else:
        if actual is None or expected is None:  # a missing field (or `null`) is never > or < anything
            return False
        try:
            left, right = int(actual), int(expected)
        except (TypeError, ValueError):
            return False
        result = {">": left > right, "<": left < right, ">=": left >= right, "<=": left <= right}[op]
    return result != clause["neg"]


def search_response(sb: Sandbox, kind: str, p: Params, url: str) -> dict[str, Any]:
    p.check_known({"query", "limit", "page"})
    join, clauses = parse_query(p.str("query", required=True))
    combine = all if join == "AND" else any
    objects = [o for o in sb.store.all(kind) if not o.get("_inline") and not o.get("_deleted") and combine(_matches(sb.view(o), c) for c in clauses)]
    objects.sort(key=lambda o: (o["created"], o["_seq"]), reverse=True)
    limit = p.int("limit", default=10)
    if not 1 <= limit <= 100:
        raise invalid("Invalid limit: must be between 1 and 100", "limit")
    offset = 0
    if page_token := p.str("page"):
        try:
            offset = int(base64.urlsafe_b64decode(page_token.encode()).decode().split(":", 1)[1])
        except (ValueError, IndexError):
            raise invalid("Invalid page token.", "page") from None
    page = objects[offset : offset + limit]
    more = len(objects) > offset + limit
    token = base64.urlsafe_b64encode(f"offset:{offset + limit}".encode()).decode() if more else None
    return {"object": "search_result", "data": [sb.view(o) for o in page], "has_more": more, "next_page": token, "url": url}


def get_or_404(sb: Sandbox, kind: str, ident: str, label: str | None = None) -> dict[str, Any]:
    obj = sb.store.get(kind, ident)
    if obj is None:
        raise StripeError(404, f"No such {label or kind}: '{ident}'", param="id", code="resource_missing")
    return obj
