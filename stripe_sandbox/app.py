"""``create_sandbox_app(sb)``: the Starlette app serving the API, the hosted pages and the admin endpoints."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from stripe_sandbox import (  # noqa: F401  (register the /v1 routes)
    api,
    clocks,
    hosted,
    money,
    payments,
    routes_billing,
    routes_core,
    routes_credit_notes,
    routes_payments,
    sepa,
)
from stripe_sandbox.sandbox import FAULT_MODES
from stripe_sandbox.state import public

if TYPE_CHECKING:
    from stripe_sandbox.sandbox import Sandbox


async def _admin_params(request: Request) -> dict[str, Any]:
    body = await request.body()
    params: dict[str, Any] = dict(parse_qsl(request.url.query))
    if body:
        if "json" in request.headers.get("content-type", ""):
            params.update(json.loads(body))
        else:
            params.update(parse_qsl(body.decode(), keep_blank_values=True))
    return params


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": {"type": "invalid_request_error", "message": message}}, status_code=status)


async def admin_advance(request: Request) -> Response:
    sb: Sandbox = request.app.state.sandbox
    params = await _admin_params(request)
    try:
        seconds = int(params.get("seconds", ""))
        events = sb.advance_clock(seconds)
    except ValueError as exc:
        return _error(f"seconds: a non-negative integer is required ({exc})")
    return JSONResponse({"now": sb.now(), "events": events})


async def admin_clock(request: Request) -> Response:
    return JSONResponse({"now": request.app.state.sandbox.now()})


async def admin_faults(request: Request) -> Response:
    sb: Sandbox = request.app.state.sandbox
    if request.method == "POST":
        params = await _admin_params(request)
        if str(params.get("clear", "")).lower() in ("1", "true"):
            sb.clear_faults()
        else:
            mode = params.get("mode", "")
            if mode not in FAULT_MODES:
                return _error(f"mode: one of {', '.join(FAULT_MODES)}")
            try:
                sb.inject_fault(params.get("method", "*"), params.get("path_prefix", "/v1/"), mode, int(params.get("count", 1)))
            except ValueError as exc:
                return _error(str(exc))
    with sb.lock:
        return JSONResponse({"faults": [dict(f) for f in sb.faults]})


async def admin_fail_payouts(request: Request) -> Response:
    """``payout=po_…``: that payout fails now (in transit or paid); else the next ``count``
    payouts fail on arrival. ``failure_code`` is one of Stripe's (default ``account_closed``)."""
    sb: Sandbox = request.app.state.sandbox
    params = await _admin_params(request)
    code = params.get("failure_code") or "account_closed"
    with sb.lock:
        try:
            if payout_id := params.get("payout"):
                payout = sb.store.get("payout", payout_id)
                if payout is None:
                    return _error(f"payout: no such payout {payout_id!r}", 404)
                money.fail_payout(sb, payout, code)
                sb.save()
                return JSONResponse({"payout": public(payout)})
            money.fail_next_payouts(sb, code, int(params.get("count", 1)))
        except ValueError as exc:
            return _error(str(exc))
        sb.save()
        return JSONResponse({"payout_failures": list(sb.store.data.get("payout_failures", []))})


async def admin_fail_refund(request: Request) -> Response:
    """``refund=re_…`` fails now (``failure_reason``, default ``expired_or_canceled_card``)."""
    sb: Sandbox = request.app.state.sandbox
    params = await _admin_params(request)
    refund_id = params.get("refund", "")
    with sb.on_clock_of(refund_id):
        refund = sb.store.get("refund", refund_id)
        if refund is None:
            return _error(f"refund: no such refund {refund_id!r}", 404)
        try:
            payments.fail_refund(sb, refund, params.get("failure_reason") or "expired_or_canceled_card")
        except ValueError as exc:
            return _error(str(exc))
        sb.save()
        return JSONResponse({"refund": public(refund)})


async def admin_fail_sepa(request: Request) -> Response:
    """The next SEPA debit to settle fails with ``failure_code`` (default ``insufficient_funds``)."""
    sb: Sandbox = request.app.state.sandbox
    params = await _admin_params(request)
    with sb.lock:
        try:
            sepa.arm_failure(sb, params.get("failure_code") or "insufficient_funds")
        except ValueError as exc:
            return _error(str(exc))
        sb.save()
        return JSONResponse({"sepa_failures": list(sb.store.data.get("sepa_failures", []))})


async def admin_deliver(request: Request) -> Response:
    sb: Sandbox = request.app.state.sandbox
    return JSONResponse({"delivered": await sb.deliver_pending()})


async def admin_events(request: Request) -> Response:
    sb: Sandbox = request.app.state.sandbox
    with sb.lock:
        events = []
        for event in sb.store.data["objects"]["event"].values():
            shown = public(event)
            delivery = event.get("_delivery")
            if delivery:
                shown["sandbox_delivery"] = {k: delivery.get(k) for k in ("attempts", "next_at", "last_status", "delivered_at", "given_up",
                                                                          "duplicates", "duplicate_at")}
            events.append(shown)
    return JSONResponse({"object": "list", "data": events})


async def admin_refused(request: Request) -> Response:
    """Requests refused by the version's parameter validation; ``POST`` empties the list."""
    sb: Sandbox = request.app.state.sandbox
    with sb.lock:
        refused = list(sb.refused)
        if request.method == "POST":
            sb.refused.clear()
    return JSONResponse({"count": len(refused), "refused": refused})


def create_sandbox_app(sb: Sandbox) -> Starlette:
    """The sandbox as an ASGI app; mount it at the path of ``sb.public_base`` (e.g. ``/_sandbox/stripe``)."""
    app = Starlette(
        routes=[
            Route("/v1/{path:path}", api.dispatch, methods=["GET", "POST", "DELETE"], name="api"),
            Route("/checkout/{ident}", hosted.checkout_page, methods=["GET"], name="checkout"),
            Route("/checkout/{ident}", hosted.checkout_submit, methods=["POST"], name="checkout_submit"),
            Route("/checkout/{ident}/done", hosted.checkout_done, methods=["GET"], name="checkout_done"),
            Route("/authenticate/{ident}", hosted.challenge_page, methods=["GET"], name="authenticate"),
            Route("/authenticate/{ident}", hosted.challenge_submit, methods=["POST"], name="authenticate_submit"),
            Route("/invoices/{ident}", hosted.invoice_page, methods=["GET"], name="invoice"),
            Route("/invoices/{ident}", hosted.invoice_submit, methods=["POST"], name="invoice_submit"),
            Route("/invoices/{ident}/pdf", hosted.invoice_pdf, methods=["GET"], name="invoice_pdf"),
            Route("/credit_notes/{ident}", hosted.credit_note_page, methods=["GET"], name="credit_note"),
            Route("/credit_notes/{ident}/pdf", hosted.credit_note_pdf, methods=["GET"], name="credit_note_pdf"),
            Route("/receipts/{ident}", hosted.receipt_page, methods=["GET"], name="receipt"),
            Route("/portal/{ident}", hosted.portal_page, methods=["GET"], name="portal"),
            Route("/portal/{ident}", hosted.portal_submit, methods=["POST"], name="portal_submit"),
            Route("/_admin/advance", admin_advance, methods=["POST"], name="admin_advance"),
            Route("/_admin/clock", admin_clock, methods=["GET"], name="admin_clock"),
            Route("/_admin/faults", admin_faults, methods=["GET", "POST"], name="admin_faults"),
            Route("/_admin/payouts/fail", admin_fail_payouts, methods=["POST"], name="admin_fail_payouts"),
            Route("/_admin/refunds/fail", admin_fail_refund, methods=["POST"], name="admin_fail_refund"),
            Route("/_admin/sepa/fail", admin_fail_sepa, methods=["POST"], name="admin_fail_sepa"),
            Route("/_admin/deliver", admin_deliver, methods=["POST"], name="admin_deliver"),
            Route("/_admin/events", admin_events, methods=["GET"], name="admin_events"),
            Route("/_admin/refused", admin_refused, methods=["GET", "POST"], name="admin_refused"),
        ]
    )
    app.state.sandbox = sb
    return app
