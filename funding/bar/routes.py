"""Bar pages: the staff till (made for a tablet or a phone: one tap per item, a form POST per
tap, a little JavaScript only to spare a reload), products, closings, and the member's tab.
HTTP only: parse, call the service, render.
"""

from __future__ import annotations

import io
import logging

from sqlalchemy import select
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from funding.bar import catalog, closings, settlement, till
from funding.bar.models import BatchStatus, Ticket, TicketStatus, TillClosing, TillHead
from funding.bar.service import member_tabs, start_tab_payment, start_walk_in_payment
from funding.bar.till import BarError
from funding.db import row_id, statement_connection
from funding.i18n import day as i18n_day
from funding.i18n import gettext as _
from funding.i18n import money
from funding.orgs.models import Site
from funding.payments import books
from funding.payments.models import Payment, PaymentStatus
from funding.payments.service import settle_return, settle_session
from funding.stripe_gateway import GatewayError
from funding.web import STAFF, db, flash, redirect, redirect_to, render, require

log = logging.getLogger("funding.bar")
MEMBER = ("member",)


def _int(value) -> int | None:
    return row_id(value)


async def _site(session, slug: str) -> Site:
    site = await session.scalar(select(Site).where(Site.slug == slug))
    if site is None:
        raise HTTPException(404)
    return site


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def _back_to_till(request: Request, slug: str, member_id=None, ticket_id=None) -> Response:
    """The till, open on the walk-in ticket or the member's tab the staff was serving."""
    query = {"comptoir": ticket_id} if ticket_id else {"membre": member_id} if member_id else None
    return redirect_to(request, "bar_till", query=query, site=slug)


def qr_svg(text: str) -> str:
    """An inline SVG QR code of ``text`` (segno: pure Python, no image files)."""
    import segno

    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind="svg", scale=6, border=2, xmldecl=False, svgns=True,
                                       svgclass="qr", title=_("QR code du paiement"))
    return out.getvalue().decode()


# --- the till ---------------------------------------------------------------------------------


async def index(request: Request) -> Response:
    async with db(request) as session:
        await require(request, session, STAFF)
        sites = (await session.scalars(select(Site).order_by(Site.is_central.desc(), Site.name))).all()
    return render(request, "bar/index.html", {"sites": sites})


async def till_page(request: Request) -> Response:
    params = request.query_params
    async with db(request) as session:
        await require(request, session, STAFF)
        site = await _site(session, request.path_params["site"])
        head = await session.get(TillHead, site.id)
        day = till.business_day(head) if head else till.local_today()
        member = ticket = None
        lines, canceled, total, owed = [], set(), 0, 0
        if _int(params.get("membre")):
            try:
                member = await till.tab_holder(session, site, params["membre"])
            except BarError:
                raise HTTPException(404) from None
            lines = await till.lines_of(session, site_id=site.id, member_id=member.id, open_only=True)
            total = await till.tab_balance(session, site.id, member.id)
            owed = await till.owed_in_org(session, site.org_id, member.id)
        elif _int(params.get("comptoir")):
            ticket = await session.get(Ticket, _int(params["comptoir"]))
            if ticket is None or ticket.site_id != site.id:
                raise HTTPException(404)
            lines = await till.lines_of(session, site_id=site.id, ticket_id=ticket.id)
            total, _cur = await till.ticket_total(session, ticket.id)
        canceled = await till.canceled_ids(session, [line.id for line in lines])
        found = await till.find_members(session, site, params.get("q", "")) if params.get("q") else []
        products = await catalog.products_of(session, site.id, active_only=True)
        summary = await till.day_summary(session, site.id, day)
    groups: dict[str, list] = {}
    for product in products:
        groups.setdefault(product.category or _("Divers"), []).append(product)
    return render(request, "bar/till.html", {
        "site": site, "day": day, "member": member, "ticket": ticket, "lines": lines, "canceled": canceled,
        "total": total, "owed": owed, "limit": request.app.state.settings.bar_tab_limit, "q": params.get("q", ""), "found": found,
        "groups": list(groups.items()), "summary": summary,
    })


async def sell(request: Request) -> Response:
    form = await request.form()
    slug = request.path_params["site"]
    member_id, ticket_id = form.get("member_id") or None, form.get("ticket_id") or None
    try:
        rung = await _ring_up_at_once(request, slug, form, member_id) if member_id else None
        if rung is not None:
            shown = rung.balance
        else:
            async with db(request) as session:
                user = await require(request, session, STAFF)
                site = await _site(session, slug)
                rung = await till.ring_up(session, site, product_id=form.get("product_id"),
                                          quantity=form.get("quantity") or 1, member_id=member_id,
                                          ticket_id=ticket_id if not member_id else None,
                                          limit=request.app.state.settings.bar_tab_limit, recorded_by=user.name)
                # A walk-in sale has no tab: what the till shows is the sale's amount to collect.
                shown = rung.balance if rung.balance is not None or rung.line.ticket_id is None else \
                    (await till.ticket_total(session, rung.line.ticket_id))[0]
    except BarError as exc:
        if _wants_json(request):
            return JSONResponse({"ok": False, "error": str(exc)}, status_code=400)
        flash(request, str(exc), "error")
        return _back_to_till(request, slug, member_id, ticket_id)
    line = rung.line
    message = _("%(label)s ajouté (%(amount)s).", label=line.label, amount=money(line.amount, line.currency))
    if rung.balance is not None:
        message += " " + _("Ardoise : %(balance)s.", balance=money(rung.balance, line.currency))
    if _wants_json(request):
        return JSONResponse({"ok": True, "message": message, "line": {
            "id": line.id, "seq": line.seq, "label": line.label, "quantity": line.quantity,
            "amount": money(line.amount, line.currency)},
            "balance": money(shown, line.currency) if shown is not None else None})
    flash(request, message, "success")
    return _back_to_till(request, slug, member_id, ticket_id)


async def _ring_up_at_once(request: Request, slug: str, form, member_id) -> till.Rung | None:
    """On PostgreSQL, a well-formed tap on a member's tab in one statement (till.ring_up_at_once),
    after require() on the same connection; None where the ORM path answers: SQLite, anything
    malformed (it words the refusal in the order the till always has), a site out of scope (404)
    or without its first line."""
    engine = request.app.state.engine
    product_id, member = row_id(form.get("product_id")), row_id(member_id)
    if engine.dialect.name != "postgresql" or product_id is None or member is None:
        return None
    try:
        quantity = till.parse_quantity(form.get("quantity") or 1)
    except BarError:
        return None
    async with statement_connection(engine) as conn:  # each statement its own transaction
        user = await require(request, conn, STAFF)
        return await till.ring_up_at_once(conn, request.scope["org_scope"], slug=slug, product_id=product_id,
                                          member_id=member, quantity=quantity,
                                          limit=request.app.state.settings.bar_tab_limit, recorded_by=user.name)


async def cancel_line(request: Request) -> Response:
    form = await request.form()
    slug = request.path_params["site"]
    member_id, ticket_id = form.get("member_id") or None, form.get("ticket_id") or None
    try:
        async with db(request) as session:
            user = await require(request, session, STAFF)
            site = await _site(session, slug)
            line = await till.cancel(session, site, line_id=form.get("line_id"), reason=str(form.get("reason", "")),
                                     recorded_by=user.name)
    except BarError as exc:
        flash(request, str(exc), "error")
    else:
        flash(request, _("Ligne annulée : %(label)s (%(amount)s), motif « %(reason)s ».", label=line.label,
                         amount=money(line.amount, line.currency), reason=line.reason), "success")
    return _back_to_till(request, slug, member_id, ticket_id)


async def new_ticket(request: Request) -> Response:
    slug = request.path_params["site"]
    async with db(request) as session:
        user = await require(request, session, STAFF)
        site = await _site(session, slug)
        ticket = await till.open_ticket(session, site, created_by=user.name)
    return _back_to_till(request, slug, ticket_id=ticket.id)


async def charge_ticket(request: Request) -> Response:
    slug, ticket_id = request.path_params["site"], request.path_params["ticket"]
    async with db(request) as session:
        await require(request, session, STAFF)
        site = await _site(session, slug)
    try:
        await start_walk_in_payment(request.app.state.sessions, request.app.state.gateway, site, ticket_id,
                                    base_url=request.app.state.settings.base_url)
    except BarError as exc:
        flash(request, str(exc), "error")
        return _back_to_till(request, slug, ticket_id=ticket_id)
    except GatewayError:
        flash(request, _("Le paiement par carte est momentanément indisponible : réessayez dans un instant."), "error")
        return _back_to_till(request, slug, ticket_id=ticket_id)
    return redirect_to(request, "bar_ticket_payment", site=slug, ticket=ticket_id)


async def ticket_payment(request: Request) -> Response:
    """The QR code of the walk-in's Checkout; refreshed until Stripe says it is paid."""
    slug, ticket_id = request.path_params["site"], request.path_params["ticket"]
    async with db(request) as session:
        await require(request, session, STAFF)
        site = await _site(session, slug)
        ticket = await session.get(Ticket, ticket_id)
        if ticket is None or ticket.site_id != site.id:
            raise HTTPException(404)
        payment = await session.get(Payment, ticket.payment_id) if ticket.payment_id else None
        total, currency = await till.ticket_total(session, ticket.id)
    url = None
    if payment is not None and payment.checkout_session_id and ticket.status == TicketStatus.OPEN:
        gw = request.app.state.gateway
        try:
            checkout = await gw.retrieve("checkout.sessions", payment.checkout_session_id, expand=["payment_intent.latest_charge"])
        except GatewayError:
            checkout = None
        if checkout is not None:
            async with db(request) as session:
                await settle_session(session, checkout)
                ticket = await session.get(Ticket, ticket_id, populate_existing=True)
            if ticket is None:  # it was there a moment ago, and a ticket is never deleted
                raise LookupError(f"Ticket {ticket_id} does not exist")
            url = checkout.get("url") if checkout.get("status") == "open" else None
            if ticket.status == TicketStatus.PAID:
                await _book_now(request, checkout)
    return render(request, "bar/pay.html", {"site": site, "ticket": ticket, "payment": payment, "total": total,
                                            "currency": currency, "url": url, "qr": qr_svg(url) if url else None})


async def _book_now(request: Request, checkout: dict) -> None:
    pi = checkout.get("payment_intent")
    charge = pi.get("latest_charge") if isinstance(pi, dict) else None
    bt = charge.get("balance_transaction") if isinstance(charge, dict) else None
    if bt:
        try:
            await books.ingest(request.app.state.sessions, request.app.state.gateway, [bt if isinstance(bt, str) else bt["id"]])
        except Exception:  # the webhook or the worker books it anyway
            log.warning("bar: checkout %s not booked now; the webhook or the worker books it", checkout.get("id"), exc_info=True)
    request.app.state.kick_mail()


async def walk_in_thanks(request: Request) -> Response:
    """Where Checkout sends a walk-in customer after paying, on their own phone: public (the
    customer has no account), and it says no more than the sale's total and whether it is paid."""
    slug, ticket_id = request.path_params["site"], request.path_params["ticket"]
    session_id = request.query_params.get("session_id", "")
    async with db(request) as session:
        site = await _site(session, slug)
        ticket = await session.get(Ticket, ticket_id)
        payment = await session.get(Payment, ticket.payment_id) if ticket is not None and ticket.payment_id else None
        if ticket is None or ticket.site_id != site.id or payment is None or not session_id \
                or payment.checkout_session_id != session_id:
            raise HTTPException(404)
        total, currency = await till.ticket_total(session, ticket.id)
    # An open ticket is settled from Stripe's current state and its charge booked now, once (the webhook may be late).
    if ticket.status == TicketStatus.OPEN and \
            await settle_return(request.app.state.sessions, request.app.state.gateway, session_id) is not None:
        request.app.state.kick_mail()
        async with db(request) as session:
            ticket = await session.get(Ticket, ticket_id, populate_existing=True)
    return render(request, "bar/walk_in_done.html", {"site": site, "ticket": ticket, "total": total, "currency": currency,
                                                     "paid": ticket is not None and ticket.status == TicketStatus.PAID})


async def walk_in_canceled(request: Request) -> Response:
    """Where Checkout sends a walk-in customer who turned back: public, so it shows nothing of
    the sale (its address is guessable), only that nothing was charged."""
    async with db(request) as session:
        site = await _site(session, request.path_params["site"])
    return render(request, "bar/walk_in_done.html", {"site": site, "paid": False, "canceled": True})


async def cancel_ticket(request: Request) -> Response:
    form = await request.form()
    slug, ticket_id = request.path_params["site"], request.path_params["ticket"]
    if not await _stop_open_checkout(request, ticket_id):
        flash(request, _("Le client est en train de payer (ou a payé) : la vente ne peut plus être annulée ici."), "error")
        return redirect_to(request, "bar_ticket_payment", site=slug, ticket=ticket_id)
    try:
        async with db(request) as session:
            user = await require(request, session, STAFF)
            site = await _site(session, slug)
            ticket = await session.get(Ticket, ticket_id)
            if ticket is None or ticket.site_id != site.id:
                raise HTTPException(404)
            count = await till.cancel_ticket(session, site, ticket, reason=str(form.get("reason", "")), recorded_by=user.name)
    except BarError as exc:
        flash(request, str(exc), "error")
        return _back_to_till(request, slug, ticket_id=ticket_id)
    flash(request, _("Vente comptoir annulée (%(n)s ligne(s)).", n=count), "success")
    return _back_to_till(request, slug)


async def _stop_open_checkout(request: Request, ticket_id: int) -> bool:
    """Before a walk-in sale is canceled, its Checkout page (if any) is expired in Stripe, so
    the customer can no longer pay a canceled sale. False when it is already paid (or paying)."""
    async with db(request) as session:
        await require(request, session, STAFF)
        ticket = await session.get(Ticket, ticket_id)
        payment = await session.get(Payment, ticket.payment_id) if ticket is not None and ticket.payment_id else None
    if payment is None or payment.status in (PaymentStatus.EXPIRED, PaymentStatus.FAILED) or not payment.checkout_session_id:
        return payment is None or payment.status != PaymentStatus.PAID
    gw = request.app.state.gateway
    try:
        checkout = await gw.retrieve("checkout.sessions", payment.checkout_session_id)
        if checkout.get("status") == "open":
            checkout = await gw.call("checkout.sessions", "expire", payment.checkout_session_id)
    except GatewayError:
        return False
    async with db(request) as session:
        await settle_session(session, checkout)
    return checkout.get("status") == "expired"


async def close_today(request: Request) -> Response:
    slug = request.path_params["site"]
    try:
        async with db(request) as session:
            user = await require(request, session, STAFF)
            site = await _site(session, slug)
            made = await closings.close_day(session, site, closed_by=user.name)
    except BarError as exc:
        flash(request, str(exc), "error")
        return _back_to_till(request, slug)
    last = made[-1]
    flash(request, _("Journée du %(day)s clôturée : %(total)s.", day=i18n_day(last.end_date),
                     total=", ".join(money(v, c) for c, v in closings.closing_view(last)["period_total"].items()) or money(0)),
          "success")
    return redirect_to(request, "bar_closing", site=slug, closing=last.id)


async def settle_member(request: Request) -> Response:
    slug, member_id = request.path_params["site"], request.path_params["member"]
    try:
        async with db(request) as session:
            await require(request, session, STAFF)
            site = await _site(session, slug)
            await till.tab_holder(session, site, member_id)
            batch = await settlement.settle_departure(session, site, member_id)
    except BarError as exc:
        flash(request, str(exc), "error")
        return _back_to_till(request, slug, member_id)
    try:
        status = await settlement.bill(request.app.state.sessions, request.app.state.gateway, batch.id)
    except GatewayError:
        status = BatchStatus.READY
    request.app.state.kick_mail()
    messages: dict[str, str] = {  # keyed by status: bill() answers a plain string
        BatchStatus.PAID: _("Ardoise soldée : %(amount)s prélevés sur la carte enregistrée."),
        BatchStatus.BILLED: _("Ardoise arrêtée (%(amount)s) : paiement en cours (carte, ou prélèvement SEPA sous quelques jours)."),
        BatchStatus.DUE: _("Ardoise arrêtée (%(amount)s) : le membre la règle depuis son espace (e-mail envoyé)."),
        BatchStatus.READY: _("Ardoise arrêtée (%(amount)s) : elle sera facturée dans quelques minutes.")}
    flash(request, messages.get(status, messages[BatchStatus.READY]) % {"amount": money(batch.amount, batch.currency)}, "success")
    return _back_to_till(request, slug, member_id)


# --- closings -------------------------------------------------------------------------------


async def closing_list(request: Request) -> Response:
    async with db(request) as session:
        await require(request, session, (*STAFF, "accountant"))
        site = await _site(session, request.path_params["site"])
        rows = (await session.scalars(select(TillClosing).where(TillClosing.site_id == site.id)
                                      .order_by(TillClosing.id.desc()).limit(120))).all()
    return render(request, "bar/closings.html", {"site": site, "closings": [(c, closings.closing_view(c)) for c in rows]})


async def closing_detail(request: Request) -> Response:
    async with db(request) as session:
        await require(request, session, (*STAFF, "accountant"))
        site = await _site(session, request.path_params["site"])
        closing = await session.get(TillClosing, _int(request.path_params["closing"]) or 0)
        if closing is None or closing.site_id != site.id:
            raise HTTPException(404)
    return render(request, "bar/closing.html", {"site": site, "closing": closing, "view": closings.closing_view(closing),
                                                "rate_labels": {"55": "5,5 %", "100": "10 %", "200": "20 %"}})


# --- products -------------------------------------------------------------------------------


async def products_page(request: Request) -> Response:
    slug = request.path_params["site"]
    error, form_values = None, {}
    if request.method == "POST":
        form = await request.form()
        form_values = {k: str(form.get(k, "")) for k in ("name", "category", "price", "vat_rate")}
        upload = form.get("file")
        try:
            async with db(request) as session:
                await require(request, session, STAFF)
                site = await _site(session, slug)
                if isinstance(upload, UploadFile) and upload.filename:
                    added, updated = await catalog.import_rows(session, site, catalog.parse_csv(await upload.read()))
                    message = _("Import : %(a)s produit(s) ajouté(s), %(u)s modifié(s).", a=added, u=updated)
                elif form.get("product_id"):
                    product = await catalog.edit_product(session, site, form.get("product_id"), name=form.get("name"),
                                                         category=form.get("category", ""), price=form.get("price"),
                                                         vat_rate=form.get("vat_rate"), active=form.get("active") == "1")
                    message = _("« %(name)s » enregistré.", name=product.name)
                else:
                    product = await catalog.add_product(session, site, name=form_values["name"],
                                                        category=form_values["category"], price=form_values["price"],
                                                        vat_rate=form_values["vat_rate"])
                    message = _("« %(name)s » ajouté.", name=product.name)
        except BarError as exc:
            error = str(exc)
        else:
            flash(request, message, "success")
            return redirect_to(request, "bar_products", site=slug)
    async with db(request) as session:
        await require(request, session, STAFF)
        site = await _site(session, slug)
        products = await catalog.products_of(session, site.id)
    return render(request, "bar/products.html", {"site": site, "products": products, "error": error,
                                                 "form": form_values, "rates": [("5,5", "5,5 %"), ("10", "10 %"),
                                                                                ("20", "20 %")]},
                  status_code=400 if error else 200)


# --- the member's tab ------------------------------------------------------------------------


async def my_tab(request: Request) -> Response:
    async with db(request) as session:
        user = await require(request, session, MEMBER)
        data = await member_tabs(session, user.id)
        lines = {site.id: await till.lines_of(session, site_id=site.id, member_id=user.id, open_only=True)
                 for site, _balance in data["tabs"]}
    return render(request, "bar/my_tab.html", {**data, "lines": lines})


async def pay_tab(request: Request) -> Response:
    async with db(request) as session:
        user = await require(request, session, MEMBER)
    try:
        url = await start_tab_payment(request.app.state.sessions, request.app.state.gateway, user.id,
                                      _int(request.path_params["batch"]) or 0, base_url=request.app.state.settings.base_url)
    except BarError as exc:
        flash(request, str(exc), "error")
        return redirect_to(request, "bar_my_tab")
    except GatewayError:
        flash(request, _("Le paiement est momentanément indisponible. Réessayez dans quelques minutes : rien n'a été débité."),
              "error")
        return redirect_to(request, "bar_my_tab")
    return redirect(url)


async def tab_thanks(request: Request) -> Response:
    session_id = request.query_params.get("session_id", "")
    async with db(request) as session:
        await require(request, session, MEMBER)
    if session_id.startswith("cs_"):
        try:
            checkout = await request.app.state.gateway.retrieve("checkout.sessions", session_id,
                                                                expand=["payment_intent.latest_charge"])
        except GatewayError:
            checkout = None
        if checkout is not None:
            async with db(request) as session:
                payment = await settle_session(session, checkout)
            if payment is not None and payment.status == PaymentStatus.PAID:
                await _book_now(request, checkout)
                flash(request, _("Merci ! Votre ardoise est réglée."), "success")
    return redirect_to(request, "bar_my_tab")


routes = [
    Route("/bar", index, name="bar_index"),
    Route("/bar/ardoise", my_tab, name="bar_my_tab"),
    Route("/bar/ardoise/merci", tab_thanks, name="bar_tab_thanks"),
    Route("/bar/ardoise/{batch:id}/regler", pay_tab, methods=["POST"], name="bar_pay_tab"),
    Route("/bar/{site}/caisse", till_page, name="bar_till"),
    Route("/bar/{site}/caisse/vente", sell, methods=["POST"], name="bar_sell"),
    Route("/bar/{site}/caisse/annulation", cancel_line, methods=["POST"], name="bar_cancel"),
    Route("/bar/{site}/caisse/cloture", close_today, methods=["POST"], name="bar_close_day"),
    Route("/bar/{site}/comptoir", new_ticket, methods=["POST"], name="bar_new_ticket"),
    Route("/bar/{site}/comptoir/{ticket:id}", ticket_payment, name="bar_ticket_payment"),
    Route("/bar/{site}/comptoir/{ticket:id}/merci", walk_in_thanks, name="bar_walk_in_thanks"),
    Route("/bar/{site}/comptoir/{ticket:id}/paiement-annule", walk_in_canceled, name="bar_walk_in_canceled"),
    Route("/bar/{site}/comptoir/{ticket:id}/encaisser", charge_ticket, methods=["POST"], name="bar_charge_ticket"),
    Route("/bar/{site}/comptoir/{ticket:id}/annuler", cancel_ticket, methods=["POST"], name="bar_cancel_ticket"),
    Route("/bar/{site}/membres/{member:id}/solder", settle_member, methods=["POST"], name="bar_settle_member"),
    Route("/bar/{site}/clotures", closing_list, name="bar_closings"),
    Route("/bar/{site}/clotures/{closing:id}", closing_detail, name="bar_closing"),
    Route("/bar/{site}/produits", products_page, methods=["GET", "POST"], name="bar_products"),
]
