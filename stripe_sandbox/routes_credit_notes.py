"""Routes for Credit Notes: create, preview (and its lines), retrieve, update, list, lines, void."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stripe_sandbox import credit_notes
from stripe_sandbox.api import list_response, paginate, route
from stripe_sandbox.encoding import Params
from stripe_sandbox.routes_core import updated
from stripe_sandbox.state import public

if TYPE_CHECKING:
    from stripe_sandbox.sandbox import Sandbox

PAGE = {"limit", "starting_after", "ending_before"}


@route("POST", "/v1/credit_notes")
def create_credit_note(sb: Sandbox, p: Params) -> dict[str, Any]:
    return sb.view(credit_notes.issue(sb, credit_notes.build(sb, p)))


# /preview is registered before /{ident}: the first route whose pattern matches answers.
@route("GET", "/v1/credit_notes/preview")
def preview_credit_note(sb: Sandbox, p: Params) -> dict[str, Any]:
    return public(credit_notes.build(sb, p, preview=True).note)


@route("GET", "/v1/credit_notes/preview/lines")
def preview_credit_note_lines(sb: Sandbox, p: Params) -> dict[str, Any]:
    lines = credit_notes.build(sb, Params({k: v for k, v in p.data.items() if k not in PAGE}), preview=True).lines
    page, more = paginate(lines, p)
    return {"object": "list", "data": public(page), "has_more": more, "url": "/v1/credit_notes/preview/lines"}


@route("GET", "/v1/credit_notes/{ident}")
def get_credit_note(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    return sb.view(credit_notes.find(sb, ident))


@route("POST", "/v1/credit_notes/{ident}")
def update_credit_note(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    note = credit_notes.find(sb, ident)
    return updated(sb, note, credit_notes.update(sb, note, p), "credit_note.updated")


@route("POST", "/v1/credit_notes/{ident}/void")
def void_credit_note(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    p.check_known(set())
    note = credit_notes.find(sb, ident)
    credit_notes.void(sb, note)
    return sb.view(note)


@route("GET", "/v1/credit_notes/{ident}/lines")
def credit_note_lines(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    p.check_known(PAGE)
    note = credit_notes.find(sb, ident)
    page, more = paginate(note["lines"]["data"], p)
    return {"object": "list", "data": public(page), "has_more": more, "url": f"/v1/credit_notes/{ident}/lines"}


@route("GET", "/v1/credit_notes")
def list_credit_notes(sb: Sandbox, p: Params) -> dict[str, Any]:
    invoice, customer = p.str("invoice"), p.str("customer")
    return list_response(
        sb, "credit_note", p, "/v1/credit_notes",
        lambda n: invoice in (None, n["invoice"]) and customer in (None, n["customer"]),
        extra={"invoice", "customer", "customer_account"},
    )

