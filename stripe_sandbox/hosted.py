"""Hosted pages: Checkout, the 3-D Secure challenge, invoices (HTML and PDF), receipts, the billing portal."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from stripe_sandbox import billing, cards, checkout, invoices, payments, sepa
from stripe_sandbox.errors import StripeError
from stripe_sandbox.money import format_amount
from stripe_sandbox.pages import (
    alert,
    card_fields,
    date_fr,
    describe_card,
    lines_table,
    link,
    minimal_pdf,
    money,
    page,
    sepa_fields,
)

if TYPE_CHECKING:
    from stripe_sandbox.sandbox import Sandbox


def _sb(request: Request) -> Sandbox:
    return request.app.state.sandbox


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body()).decode("utf-8", "replace")
    return dict(parse_qsl(body, keep_blank_values=True))


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


TEST_CARDS_HINT = (
    '<p class="hint">Cartes de test : 4000 0025 0000 3155 (3-D Secure), 4000 0000 0000 9995 (fonds insuffisants), '
    "4000 0000 0000 0341 (refus au paiement), 4000 0000 0000 0259 (litige).</p>"
)


def _not_found(what: str) -> Response:
    return page("Page introuvable", f"<p>{escape(what)} n'existe pas dans ce bac à sable.</p>", status=404)


def _read_card(sb: Sandbox, form: dict[str, str], *, ask_email: bool) -> tuple[dict[str, str], dict[str, Any] | None]:
    """Validate a card form; returns (errors by field, card details)."""
    today = dt.datetime.fromtimestamp(sb.now(), dt.UTC)
    problems = cards.parse_card_form(
        form.get("card-number", ""), form.get("card-expiry", ""), form.get("card-cvc", ""), form.get("cardholder-name", ""),
        now_year=today.year, now_month=today.month,
    )
    errors = {p.field: p.message for p in problems}
    email = form.get("email", "").strip()
    if ask_email and ("@" not in email or "." not in email.split("@")[-1] or " " in email):
        errors["email"] = "Saisissez une adresse e-mail valide."
    if errors:
        return errors, None
    month, year = cards.expiry_values(form["card-expiry"])
    return {}, {
        "number": cards.normalise_number(form["card-number"]),
        "exp_month": month,
        "exp_year": year,
        "name": form["cardholder-name"].strip(),
        "email": email or None,
    }


def _read_sepa(form: dict[str, str], *, ask_email: bool) -> tuple[dict[str, str], dict[str, Any] | None]:
    """Validate the SEPA Direct Debit form; returns (French errors by field, the IBAN, name and email)."""
    errors: dict[str, str] = {}
    name = form.get("account-holder-name", "").strip()
    if not name:
        errors["account-holder-name"] = "Saisissez le nom du titulaire du compte."
    raw = form.get("iban", "")
    iban = None
    if not raw.strip():
        errors["iban"] = "Saisissez votre IBAN."
    else:
        try:
            iban = sepa.parse_iban(raw, "iban")
        except StripeError as exc:
            value = "".join(raw.split()).upper()
            if exc.message.startswith("The country"):
                errors["iban"] = (f"Les comptes de ce pays ({value[:2]}) ne font pas partie de la zone SEPA : "
                                  "le prélèvement SEPA n'est pas possible.")
            else:
                errors["iban"] = "Cet IBAN est invalide : vérifiez-le."
    email = form.get("sepa-email", "").strip()
    if ask_email and ("@" not in email or "." not in email.split("@")[-1] or " " in email):
        errors["sepa-email"] = "Saisissez une adresse e-mail valide."
    if errors or iban is None:
        return errors, None
    return {}, {"iban": iban, "name": name, "email": email or None}


def _acceptance(request: Request) -> dict[str, Any]:
    """The customer's acceptance of the mandate, as Checkout records it: online, from this request."""
    host = request.client.host if request.client else "127.0.0.1"
    return {"accepted_at": None, "type": "online", "offline": None,
            "online": {"ip_address": host, "user_agent": request.headers.get("user-agent", "")}}


# checkout --------------------------------------------------------------------


def _checkout_email(sb: Sandbox, session: dict[str, Any]) -> str | None:
    if session["customer_email"]:
        return session["customer_email"]
    if session["customer"]:
        return sb.store.ref("customer", session["customer"])["email"]
    return None


def _checkout_page(
    sb: Sandbox, session: dict[str, Any], *,
    errors: dict[str, str] | None = None, values: dict[str, str] | None = None, message: str | None = None, status: int = 200,
) -> Response:
    errors, values = errors or {}, values or {}
    if session["status"] == "complete":
        done = '<div class="ok" role="status">Cette session de paiement est terminée.</div>'
        return page("Paiement déjà effectué", done + link(checkout.redirect_target(session), "Retour au site", "continue"))
    if session["status"] == "expired":
        expired = "<p>Cette session de paiement a expiré. Revenez au site pour recommencer.</p>"
        return page("Session expirée", expired + link(session["cancel_url"], "Retour au site", "cancel"), status=410)
    mode = session["mode"]
    email = _checkout_email(sb, session)
    summary = ""
    if mode == "setup":
        title, button = "Enregistrer votre carte", "Enregistrer la carte"
        summary = "<p>Votre carte sera enregistrée pour un paiement ultérieur ; aucun montant n'est prélevé maintenant.</p>"
    else:
        rows = []
        for item in session["_line_items"]:
            price = item["price"]
            every = ""
            if price.get("recurring"):
                every = {"day": " / jour", "week": " / semaine", "month": " / mois", "year": " / an"}[price["recurring"]["interval"]]
            rows.append((f"{item['quantity']} × {item['description'] or 'Article'}{every}", money(item["amount_total"], item["currency"])))
        total = money(session["amount_total"], session["currency"])
        summary = lines_table(rows, ("Total", total))
        title = "S'abonner" if mode == "subscription" else "Paiement"
        button = f"S'abonner — {total}" if mode == "subscription" else f"Payer {total}"
    if not errors and not message:
        message = None
    problems = ""
    if errors:
        problems = alert("Corrigez les champs signalés : " + " ".join(errors.values()))
    known_email = f"<p class='muted'>E-mail : {escape(email)}</p>" if email else ""
    submit_text = (session.get("custom_text") or {}).get("submit") or {}
    note = f"<p id='submit-message'>{escape(submit_text['message'])}</p>" if submit_text.get("message") else ""
    action = escape(sb.url('/checkout/' + session['id']))
    with_sepa = checkout.offers(session, "sepa_debit")
    card_form = ""
    if checkout.offers(session, "card"):
        card_form = f"""<section aria-labelledby="card-title">
{'<h2 id="card-title">Carte bancaire</h2>' if with_sepa else ''}
<form method="post" action="{action}" novalidate>
{known_email}
{card_fields(errors, values, ask_email=email is None)}
{note}
<button type="submit" id="pay">{escape(button)}</button>
</form>
</section>
{TEST_CARDS_HINT}"""
    sepa_form = ""
    if with_sepa:
        sepa_button = "Enregistrer le compte" if mode == "setup" else f"{button} par prélèvement"
        mandate = sepa.MANDATE_TEXT_FR.format(creditor=sepa.CREDITOR)
        sepa_form = f"""<section aria-labelledby="sepa-title" id="sepa">
<h2 id="sepa-title">Prélèvement SEPA</h2>
<form method="post" action="{action}" novalidate>
<input type="hidden" name="method" value="sepa_debit">
{known_email}
{sepa_fields(errors, values, ask_email=email is None)}
<p class="hint" id="sepa-mandate">{escape(mandate)}</p>
{note}
<button type="submit" id="pay-sepa" aria-describedby="sepa-mandate">{escape(sepa_button)}</button>
</form>
</section>"""
    body = f"""
{alert(message)}{problems}
<section class="card" aria-label="Récapitulatif">{summary}</section>
{card_form}
{sepa_form}
{link(session['cancel_url'], "Annuler et retourner au site", "cancel")}
"""
    return page(title, body, status=status)


async def checkout_page(request: Request) -> Response:
    sb = _sb(request)
    sb.tick()
    with sb.on_clock_of(request.path_params["ident"]):  # the test clock of what the page is about
        session = sb.store.get("checkout.session", request.path_params["ident"])
        if session is None:
            return _not_found("Cette session de paiement")
        return _checkout_page(sb, session)


async def checkout_submit(request: Request) -> Response:
    sb = _sb(request)
    sb.tick()
    form = await _form(request)
    with sb.on_clock_of(request.path_params["ident"]):  # the test clock of what the page is about
        session = sb.store.get("checkout.session", request.path_params["ident"])
        if session is None:
            return _not_found("Cette session de paiement")
        if session["status"] != "open":
            return _checkout_page(sb, session)
        if form.get("method") == "sepa_debit":
            return _checkout_sepa(request, sb, session, form)
        values = {k: v for k, v in form.items() if k != "card-cvc"}
        errors, card = _read_card(sb, form, ask_email=_checkout_email(sb, session) is None)
        if card is None:
            return _checkout_page(sb, session, errors=errors, values=values, status=400)
        result = checkout.submit_card(
            sb, session,
            number=card["number"], exp_month=card["exp_month"], exp_year=card["exp_year"], name=card["name"],
            email=card["email"] or _checkout_email(sb, session),
        )
        sb.save()
        return _after_checkout(sb, session, result, values)


def _checkout_sepa(request: Request, sb: Sandbox, session: dict[str, Any], form: dict[str, str]) -> Response:
    """The SEPA Direct Debit form: checked here first (French errors beside the fields, nothing created),
    then the PaymentMethod, the mandate and the debit (or the SetupIntent, or the subscription)."""
    values = {k: v for k, v in form.items() if k != "method"}
    if not checkout.offers(session, "sepa_debit"):
        return _checkout_page(sb, session, values=values, message="Le prélèvement SEPA n'est pas proposé pour ce paiement.",
                              status=400)
    known_email = _checkout_email(sb, session)
    errors, data = _read_sepa(form, ask_email=known_email is None)
    if data is None:
        return _checkout_page(sb, session, errors=errors, values=values, status=400)
    try:
        result = checkout.submit_sepa(sb, session, iban=data["iban"], name=data["name"], email=data["email"] or known_email or "",
                                      acceptance=_acceptance(request))
    except StripeError as exc:
        return _checkout_page(sb, session, values=values, message=exc.message, status=400)
    finally:
        sb.save()
    return _after_checkout(sb, session, result, values)


def _after_checkout(sb: Sandbox, session: dict[str, Any], result: checkout.Result, values: dict[str, str]) -> Response:
    if result.kind == "challenge":
        return _redirect(result.url or sb.url(f"/authenticate/{session['id']}"))
    if result.kind == "error":
        return _checkout_page(sb, session, values=values, message=result.message, status=402)
    return _redirect(result.url or sb.url(f"/checkout/{session['id']}/done"))


async def checkout_done(request: Request) -> Response:
    return page("Merci !", '<div class="ok" role="status">Opération réussie. Vous pouvez fermer cette page.</div>')


# 3-D Secure ------------------------------------------------------------------


def _challenge_subject(sb: Sandbox, ident: str) -> tuple[str, dict[str, Any]] | None:
    for kind in ("checkout.session", "payment_intent", "setup_intent", "billing_portal.session"):
        obj = sb.store.get(kind, ident)
        if obj is not None:
            return kind, obj
    return None


async def challenge_page(request: Request) -> Response:
    sb = _sb(request)
    ident = request.path_params["ident"]
    with sb.on_clock_of(request.path_params["ident"]):  # the test clock of what the page is about
        found = _challenge_subject(sb, ident)
        if found is None:
            return _not_found("Cette authentification")
        kind, obj = found
        if kind == "payment_intent":
            what = f"Paiement de {money(obj['amount'], obj['currency'])}"
        elif kind == "checkout.session" and obj["mode"] != "setup":
            what = f"Paiement de {money(obj['amount_total'], obj['currency'])}"
        else:
            what = "Enregistrement de votre carte"
        body = f"""
<p>Votre banque vous demande de confirmer cette opération (3-D Secure, simulation).</p>
<p class="card">{what}</p>
<form method="post" action="{escape(sb.url('/authenticate/' + ident))}">
<button type="submit" name="action" value="authenticate" id="authenticate">Authentifier</button>
<button type="submit" name="action" value="fail" id="fail" class="secondary">Échouer</button>
</form>"""
        return page("Authentification 3-D Secure", body)


async def challenge_submit(request: Request) -> Response:
    sb = _sb(request)
    ident = request.path_params["ident"]
    form = await _form(request)
    ok = form.get("action") == "authenticate"
    with sb.on_clock_of(request.path_params["ident"]):  # the test clock of what the page is about
        found = _challenge_subject(sb, ident)
        if found is None:
            return _not_found("Cette authentification")
        kind, obj = found
        try:
            response = _resolve_challenge(sb, kind, obj, ok)
        finally:
            sb.save()
        return response


def _with_query(url: str, params: dict[str, str]) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)


def _resolve_challenge(sb: Sandbox, kind: str, obj: dict[str, Any], ok: bool) -> Response:
    fail_message = cards.decline_message_fr("payment_intent_authentication_failure")
    if kind == "checkout.session":
        if obj["status"] != "open" or "_pending" not in obj:
            return _checkout_page(sb, obj)
        if not ok:
            obj.pop("_pending", None)
            return _checkout_page(sb, obj, message=fail_message, status=402)
        return _after_checkout(sb, obj, checkout.proceed(sb, obj, authenticated=True), {})
    if kind == "payment_intent":
        if obj["status"] == "requires_action":
            if ok:
                payments.confirm_payment_intent(sb, obj, off_session=False, authenticated=True, return_url=obj.get("_return_url"))
            else:
                payments.fail_authentication(sb, obj)
        target = obj.get("_return_url")
        status = "succeeded" if obj["status"] == "succeeded" else "failed"
        if target:
            query = {"payment_intent": obj["id"], "payment_intent_client_secret": obj["client_secret"], "redirect_status": status}
            return _redirect(_with_query(target, query))
        return _result_page(status == "succeeded")
    if kind == "setup_intent":
        if obj["status"] == "requires_action":
            if ok:
                payments.confirm_setup_intent(sb, obj, authenticated=True)
            else:
                payments.fail_setup_authentication(sb, obj)
        target = obj.get("_return_url")
        status = "succeeded" if obj["status"] == "succeeded" else "failed"
        if target:
            return _redirect(_with_query(target, {"setup_intent": obj["id"], "setup_intent_client_secret": obj["client_secret"], "redirect_status": status}))
        return _result_page(status == "succeeded")
    # billing portal: a new card waiting for authentication
    pending = obj.pop("_pending", None)
    if pending and ok:
        message = _save_portal_card(sb, obj, sb.store.ref("payment_method", pending), authenticated=True)
        return _redirect(sb.url(f"/portal/{obj['id']}") + ("?card=error" if message else "?card=ok"))
    return _redirect(sb.url(f"/portal/{obj['id']}?card=failed"))


def _result_page(ok: bool) -> Response:
    if ok:
        return page("Authentification réussie", '<div class="ok" role="status">Le paiement est confirmé.</div>')
    return page("Authentification échouée", alert(cards.decline_message_fr("payment_intent_authentication_failure")), status=402)


# invoices and receipts ---------------------------------------------------------

STATUS_FR = {"draft": "brouillon", "open": "à payer", "paid": "payée", "void": "annulée", "uncollectible": "irrécouvrable"}


def _invoice_rows(sb: Sandbox, document: dict[str, Any]) -> list[tuple[str, str]]:
    """The lines, then the tax rows, of an invoice or a credit note (both have lines, total_taxes and totals)."""
    rows = [(line["description"] or "Ligne", money(line["amount"], document["currency"])) for line in document["lines"]["data"]]
    return rows + [(label, money(amount, document["currency"])) for label, amount in _tax_rows(sb, document)]


def _pdf_amounts(sb: Sandbox, document: dict[str, Any]) -> list[str]:
    """An invoice's or credit note's PDF lines for its lines, Total HT and the tax per rate ("Total" after them includes tax)."""
    lines = [f"{line['description'] or 'Ligne'}  {format_amount(line['amount'], document['currency'])}" for line in document["lines"]["data"]]
    if taxes := _tax_rows(sb, document):
        lines += [""] + [f"{label} : {format_amount(amount, document['currency'])}" for label, amount in taxes[:-1]]
    return lines


def _tax_rows(sb: Sandbox, invoice: dict[str, Any]) -> list[tuple[str, int]]:
    """What a French invoice (or credit note) states once tax rates apply: the total excluding tax, the tax per rate, the total including it."""
    if not invoice["total_taxes"]:
        return []
    rows = [("Total HT", invoice["total_excluding_tax"])]
    for tax in invoice["total_taxes"]:
        rate = sb.store.ref("tax_rate", tax["tax_rate_details"]["tax_rate"])
        percentage = f"{rate['percentage']:g}".replace(".", ",")  # 20.0 → 20, 5.5 → 5,5
        included = " (incluse)" if tax["tax_behavior"] == "inclusive" else ""
        rows.append((f"{rate['display_name']} {percentage} %{included} sur {format_amount(tax['taxable_amount'], invoice['currency'])}", tax["amount"]))
    rows.append(("Total TTC", invoice["total"]))
    return rows


def _invoice_page(
    sb: Sandbox, invoice: dict[str, Any], *,
    errors: dict[str, str] | None = None, values: dict[str, str] | None = None, message: str | None = None, status: int = 200,
) -> Response:
    title = f"Facture {invoice['number'] or '(brouillon)'}"
    fields = "".join(f"<br>{escape(f['name'])} : {escape(f['value'])}" for f in invoice["custom_fields"] or [])
    head = f"""<p>Statut : <strong id="invoice-status">{escape(STATUS_FR.get(invoice['status'], invoice['status']))}</strong></p>
<p class="muted">Émise le {date_fr(invoice['status_transitions']['finalized_at'] or invoice['created'])} — {escape(invoice['customer_email'] or '')}</p>
<p id="invoice-customer">{escape(invoice['customer_name'] or '')}{fields}</p>"""
    table = lines_table(_invoice_rows(sb, invoice), ("Montant dû", money(invoice["amount_due"], invoice["currency"])))
    pay = ""
    if invoice["status"] == "open":
        pi = sb.store.get("payment_intent", invoice["_payment_intent"]) if invoice["_payment_intent"] else None
        if pi and pi["status"] == "requires_action":
            pay += link(pi["next_action"]["redirect_to_url"]["url"], "Authentifier le paiement auprès de votre banque", "authenticate-payment")
        pay += f"""<h2>Payer par carte</h2>
<form method="post" action="{escape(sb.url('/invoices/' + invoice['id']))}" novalidate>
{card_fields(errors or {}, values or {}, ask_email=False)}
<button type="submit" id="pay">Payer {money(invoice['amount_remaining'], invoice['currency'])}</button>
</form>"""
    elif invoice["status"] == "paid":
        pay = f'<div class="ok" role="status">Facture payée le {date_fr(invoice["status_transitions"]["paid_at"])}.</div>'
    pdf = link(invoice["invoice_pdf"], "Télécharger la facture (PDF)", "invoice-pdf")
    return page(title, f"{alert(message)}{head}<section class='card'>{table}</section>{pay}{pdf}", status=status)


async def invoice_page(request: Request) -> Response:
    sb = _sb(request)
    sb.tick()
    with sb.on_clock_of(request.path_params["ident"]):  # the test clock of what the page is about
        invoice = sb.store.get("invoice", request.path_params["ident"])
        if invoice is None or invoice["status"] == "draft":
            return _not_found("Cette facture")
        return _invoice_page(sb, invoice)


async def invoice_submit(request: Request) -> Response:
    sb = _sb(request)
    form = await _form(request)
    with sb.on_clock_of(request.path_params["ident"]):  # the test clock of what the page is about
        invoice = sb.store.get("invoice", request.path_params["ident"])
        if invoice is None or invoice["status"] == "draft":
            return _not_found("Cette facture")
        if invoice["status"] != "open":
            return _invoice_page(sb, invoice)
        values = {k: v for k, v in form.items() if k != "card-cvc"}
        errors, card = _read_card(sb, form, ask_email=False)
        if card is None:
            return _invoice_page(sb, invoice, errors=errors, values=values, status=400)
        pm = payments.new_card_payment_method(sb, card["number"], card["exp_month"], card["exp_year"], name=card["name"])
        try:
            invoices.attempt(sb, invoice, off_session=False, automatic=False, payment_method=pm["id"], return_url=invoice["hosted_invoice_url"])
        finally:
            sb.save()
        pi = sb.store.ref("payment_intent", invoice["_payment_intent"])
        if pi["status"] == "requires_action":
            return _redirect(pi["next_action"]["redirect_to_url"]["url"])
        if invoice["status"] != "paid":
            error = pi["last_payment_error"] or {}
            return _invoice_page(sb, invoice, values=values, message=cards.decline_message_fr(error.get("decline_code") or error.get("code")), status=402)
        return _redirect(invoice["hosted_invoice_url"])


async def invoice_pdf(request: Request) -> Response:
    sb = _sb(request)
    with sb.on_clock_of(request.path_params["ident"]):  # the test clock of what the page is about
        invoice = sb.store.get("invoice", request.path_params["ident"])
        if invoice is None or invoice["status"] == "draft":
            return _not_found("Cette facture")
        client = invoice["customer_name"] or invoice["customer_email"] or invoice["customer"]
        lines = [f"Facture {invoice['number']}", "BAC A SABLE STRIPE - AUCUN PAIEMENT REEL", "", f"Client : {client}"]
        lines += [f"{f['name']} : {f['value']}" for f in invoice["custom_fields"] or []]
        lines += [f"Date : {date_fr(invoice['status_transitions']['finalized_at'])}", ""]
        lines += _pdf_amounts(sb, invoice)
        lines += ["", f"Total : {format_amount(invoice['total'], invoice['currency'])}", f"Statut : {STATUS_FR.get(invoice['status'], invoice['status'])}"]
        return Response(minimal_pdf(lines), media_type="application/pdf", headers={"Content-Disposition": f'inline; filename="{invoice["number"]}.pdf"'})


# credit notes --------------------------------------------------------------------

CREDIT_NOTE_STATUS_FR = {"issued": "émis", "void": "annulé"}
REASON_FR = {
    "duplicate": "facturation en double", "fraudulent": "paiement frauduleux", "order_change": "commande modifiée",
    "product_unsatisfactory": "produit ou service insatisfaisant",
}


def _credit_note(request: Request, render: Callable[[Sandbox, dict[str, Any], dict[str, Any]], Response]) -> Response:
    """``render(sb, note, invoice)`` for the credit note the path names, or the page saying it does not exist."""
    sb = _sb(request)
    with sb.on_clock_of(request.path_params["ident"]):  # the test clock of what the page is about
        note = sb.store.get("credit_note", request.path_params["ident"])
        if note is None:
            return _not_found("Cet avoir")
        return render(sb, note, sb.store.ref("invoice", note["invoice"]))


def _credit_note_html(sb: Sandbox, note: dict[str, Any], invoice: dict[str, Any]) -> Response:
    reason = f"<p>Motif : {escape(REASON_FR[note['reason']])}</p>" if note["reason"] else ""
    memo = f"<p id='credit-note-memo'>{escape(note['memo'])}</p>" if note["memo"] else ""
    head = f"""<p>Statut : <strong id="credit-note-status">{escape(CREDIT_NOTE_STATUS_FR[note['status']])}</strong></p>
<p class="muted">Émis le {date_fr(note['effective_at'])} — sur la facture
<a href="{escape(invoice['hosted_invoice_url'] or '')}" id="credit-note-invoice">{escape(invoice['number'] or invoice['id'])}</a></p>
<p id="credit-note-customer">{escape(invoice['customer_name'] or invoice['customer_email'] or '')}</p>{reason}{memo}"""
    table = lines_table(_invoice_rows(sb, note), ("Total de l'avoir", money(note["total"], note["currency"])))
    pdf = link(note["pdf"], "Télécharger l'avoir (PDF)", "credit-note-pdf")
    return page(f"Avoir {note['number']}", f"{head}<section class='card'>{table}</section>{pdf}")


def _credit_note_pdf(sb: Sandbox, note: dict[str, Any], invoice: dict[str, Any]) -> Response:
    client = invoice["customer_name"] or invoice["customer_email"] or invoice["customer"]
    lines = [f"Avoir {note['number']}", "BAC A SABLE STRIPE - AUCUN PAIEMENT REEL", "", f"Client : {client}"]
    lines += [f"Facture d'origine : {invoice['number']}", f"Date : {date_fr(note['effective_at'])}"]
    lines += [f"Motif : {REASON_FR[note['reason']]}"] if note["reason"] else []
    lines += [note["memo"]] if note["memo"] else []
    lines += ["", *_pdf_amounts(sb, note)]
    total = "Total TTC" if note["total_taxes"] else "Total"
    lines += ["", f"{total} : {format_amount(note['total'], note['currency'])}", f"Statut : {CREDIT_NOTE_STATUS_FR[note['status']]}"]
    return Response(minimal_pdf(lines), media_type="application/pdf", headers={"Content-Disposition": f'inline; filename="{note["number"]}.pdf"'})


async def credit_note_page(request: Request) -> Response:
    return _credit_note(request, _credit_note_html)


async def credit_note_pdf(request: Request) -> Response:
    return _credit_note(request, _credit_note_pdf)


async def receipt_page(request: Request) -> Response:
    sb = _sb(request)
    with sb.on_clock_of(request.path_params["ident"]):  # the test clock of what the page is about
        charge = sb.store.get("charge", request.path_params["ident"])
        if charge is None:
            return _not_found("Ce reçu")
        card = charge["payment_method_details"]["card"]
        rows = [(f"Carte {card['brand']} •••• {card['last4']}", money(charge["amount"], charge["currency"]))]
        if charge["amount_refunded"]:
            rows.append(("Remboursé", money(-charge["amount_refunded"], charge["currency"])))
        status = "Paiement réussi" if charge["status"] == "succeeded" else "Paiement refusé"
        body = f"<p>{escape(status)} le {date_fr(charge['created'])}.</p><section class='card'>{lines_table(rows, None)}</section>"
        return page("Reçu", body)


# billing portal ------------------------------------------------------------------


def _portal_session(sb: Sandbox, ident: str) -> dict[str, Any] | None:
    session = sb.store.get("billing_portal.session", ident)
    if session is None or session["_expires_at"] < sb.now():
        return None
    return session


def _save_portal_card(sb: Sandbox, session: dict[str, Any], pm: dict[str, Any], *, authenticated: bool) -> str | None:
    """Set up a card from the portal and make it the default everywhere; returns a French error, if any."""
    seti = payments.new_setup_intent(sb, customer=session["customer"], payment_method=pm["id"], metadata={})
    status = payments.confirm_setup_intent(sb, seti, authenticated=authenticated)
    if status == "requires_action":
        session["_pending"] = pm["id"]
        return "action"
    if status != "succeeded":
        error = seti["last_setup_error"] or {}
        return cards.decline_message_fr(error.get("decline_code") or error.get("code"))
    _make_default(sb, session, pm)
    return None


def _save_portal_account(sb: Sandbox, session: dict[str, Any], account: dict[str, Any], acceptance: dict[str, Any]) -> dict[str, Any]:
    """A bank account from the portal (Stripe's portal collects a SEPA mandate where the customer
    pays by SEPA): its sepa_debit PaymentMethod, set up with the customer's acceptance of the mandate
    (a SetupIntent: setup_intent.created then .succeeded, payment_method.attached), then the default
    everywhere; returns the new mandate."""
    customer = sb.store.ref("customer", session["customer"])
    pm = sepa.new_payment_method(sb, account["iban"], name=account["name"], email=account["email"] or customer["email"])
    seti = payments.new_setup_intent(sb, customer=customer["id"], payment_method=pm["id"], metadata={},
                                     payment_method_types=["sepa_debit"])
    payments.confirm_setup_intent(sb, seti, mandate_data=acceptance)
    _make_default(sb, session, pm)
    return sb.store.ref("mandate", seti["mandate"])


def _paid_by(sb: Sandbox, customer: dict[str, Any]) -> list[dict[str, Any]]:
    """The payment methods the customer's live subscriptions are charged with (their own default,
    else the customer's default for invoices), then the customer's default: the portal shows the
    first and offers a bank account when one of them is a SEPA mandate."""
    default = customer["invoice_settings"]["default_payment_method"]
    ids = [s["default_payment_method"] or default for s in sb.store.all("subscription")
           if s["customer"] == customer["id"] and s["status"] in billing.LIVE_STATUSES] + [default]
    return [pm for pm_id in dict.fromkeys(ids) if pm_id and (pm := sb.store.get("payment_method", pm_id)) is not None]


def _make_default(sb: Sandbox, session: dict[str, Any], pm: dict[str, Any]) -> None:
    """The payment method becomes the customer's default for invoices and their live subscriptions'."""
    customer = sb.store.ref("customer", session["customer"])
    before = sb.view(customer)
    customer["invoice_settings"]["default_payment_method"] = pm["id"]
    from stripe_sandbox.webhooks import diff

    sb.emit("customer.updated", customer, diff(before, sb.view(customer)))
    for sub in sb.store.all("subscription"):
        if sub["customer"] == customer["id"] and sub["status"] in billing.LIVE_STATUSES:
            before = sb.view(sub)
            sub["default_payment_method"] = pm["id"]
            sb.emit("customer.subscription.updated", sub, diff(before, sb.view(sub)))


def _portal_page(
    sb: Sandbox, session: dict[str, Any], *,
    errors: dict[str, str] | None = None, values: dict[str, str] | None = None,
    message: str | None = None, notice: str | None = None, status: int = 200,
) -> Response:
    customer = sb.store.ref("customer", session["customer"])
    methods = _paid_by(sb, customer)
    subs = [s for s in sb.store.all("subscription") if s["customer"] == customer["id"] and s["status"] in billing.LIVE_STATUSES]
    blocks = []
    for sub in subs:
        item = sub["items"]["data"][0]
        price = sb.store.ref("price", item["price"])
        name = invoices.product_name(sb, price)
        end = item["current_period_end"]
        amount = money(sum(sb.store.ref("price", i["price"])["unit_amount"] * i["quantity"] for i in sub["items"]["data"]), sub["currency"])
        if sub["cancel_at_period_end"] or sub["cancel_at"]:
            state = f"Se termine le {date_fr(sub['cancel_at'] or end)}"
            action = f'<button type="submit" class="inline" name="action" value="resume" id="resume-{sub["id"]}">Reprendre l\'abonnement</button>'
        else:
            state = f"Prochain paiement le {date_fr(end)}"
            action = (
                f'<button type="submit" class="inline secondary" name="action" value="cancel" id="cancel-{sub["id"]}">'
                "Annuler à la fin de la période</button>"
            )
        blocks.append(
            f'<div class="card"><p><strong>{escape(name)}</strong> — {amount}</p>'
            f'<p class="muted">Statut : {escape(sub["status"])}. {escape(state)}.</p>\n'
            f'<form method="post" action="{escape(sb.url("/portal/" + session["id"]))}">'
            f'<input type="hidden" name="subscription" value="{escape(sub["id"])}">{action}</form></div>'
        )
    bills = [i for i in sb.store.all("invoice") if i["customer"] == customer["id"] and i["status"] in ("open", "paid", "uncollectible")]
    bills.sort(key=lambda i: i["created"], reverse=True)
    rows = "".join(
        f"<tr><td><a href='{escape(i['hosted_invoice_url'])}'>{escape(i['number'])}</a></td><td>{date_fr(i['created'])}</td>"
        f"<td>{escape(STATUS_FR.get(i['status'], i['status']))}</td><td class='num'>{money(i['total'], i['currency'])}</td></tr>"
        for i in bills[:12]
    )
    invoices_html = (
        "<table><thead><tr><th scope='col'>Facture</th><th scope='col'>Date</th><th scope='col'>Statut</th>"
        f"<th scope='col' class='num'>Montant</th></tr></thead><tbody>{rows}</tbody></table>"
        if rows
        else "<p>Aucune facture.</p>"
    )
    ok = f'<div class="ok" role="status">{escape(notice)}</div>' if notice else ""
    body = f"""{ok}{alert(message)}
<p class="muted">{escape(customer['email'] or customer['id'])}</p>
<h2>Abonnements</h2>{''.join(blocks) or '<p>Aucun abonnement en cours.</p>'}
<h2>Moyen de paiement</h2><p id="current-card">{escape(describe_card(methods[0] if methods else None))}</p>
<form method="post" action="{escape(sb.url('/portal/' + session['id']))}" novalidate>
<input type="hidden" name="action" value="update-card">
{card_fields(errors or {}, values or {}, ask_email=False)}
<button type="submit" id="update-card">Enregistrer cette carte</button>
</form>
{_portal_sepa_form(sb, session, customer, errors or {}, values or {}) if any(sepa.is_sepa(pm) for pm in methods) else ""}
<h2>Factures</h2>{invoices_html}
{link(session['return_url'], "Retour au site", "return")}"""
    return page("Votre espace de facturation", body, status=status)


def _portal_sepa_form(sb: Sandbox, session: dict[str, Any], customer: dict[str, Any], errors: dict[str, str],
                      values: dict[str, str]) -> str:
    mandate = sepa.MANDATE_TEXT_FR.format(creditor=sepa.CREDITOR)
    return f"""<section aria-labelledby="portal-sepa-title" id="portal-sepa">
<h3 id="portal-sepa-title">Ou un compte bancaire (prélèvement SEPA)</h3>
<form method="post" action="{escape(sb.url('/portal/' + session['id']))}" novalidate>
<input type="hidden" name="action" value="update-sepa">
{sepa_fields(errors, values, ask_email=not customer["email"])}
<p class="hint" id="portal-mandate">{escape(mandate)}</p>
<button type="submit" id="update-sepa" aria-describedby="portal-mandate">Enregistrer ce compte</button>
</form>
</section>"""


async def portal_page(request: Request) -> Response:
    sb = _sb(request)
    sb.tick()
    with sb.on_clock_of(request.path_params["ident"]):  # the test clock of what the page is about
        session = _portal_session(sb, request.path_params["ident"])
        if session is None:
            return page("Session expirée", "<p>Ce lien n'est plus valable. Revenez au site pour ouvrir une nouvelle session.</p>", status=410)
        notices = {"ok": "Votre carte est enregistrée.", "failed": None, "error": None}
        card = request.query_params.get("card")
        message = cards.decline_message_fr("payment_intent_authentication_failure") if card in ("failed", "error") else None
        return _portal_page(sb, session, notice=notices.get(card or ""), message=message)


async def portal_submit(request: Request) -> Response:
    sb = _sb(request)
    form = await _form(request)
    with sb.on_clock_of(request.path_params["ident"]):  # the test clock of what the page is about
        session = _portal_session(sb, request.path_params["ident"])
        if session is None:
            return page("Session expirée", "<p>Ce lien n'est plus valable. Revenez au site pour ouvrir une nouvelle session.</p>", status=410)
        action = form.get("action")
        try:
            if action in ("cancel", "resume"):
                sub = sb.store.get("subscription", form.get("subscription", ""))
                if sub is None or sub["customer"] != session["customer"] or sub["status"] not in billing.LIVE_STATUSES:
                    return _portal_page(sb, session, message="Abonnement introuvable.", status=404)
                from stripe_sandbox.webhooks import diff

                before = sb.view(sub)
                flag = action == "cancel"
                sub.update(cancel_at_period_end=flag, cancel_at=billing._period(sub)[1] if flag else None, canceled_at=sb.now() if flag else None)
                sub["cancellation_details"]["reason"] = "cancellation_requested" if flag else None
                sb.emit("customer.subscription.updated", sub, diff(before, sb.view(sub)))
                notice = "Votre abonnement prendra fin à la fin de la période en cours." if flag else "Votre abonnement continue."
                return _portal_page(sb, session, notice=notice)
            if action == "update-card":
                values = {k: v for k, v in form.items() if k != "card-cvc"}
                errors, card = _read_card(sb, form, ask_email=False)
                if card is None:
                    return _portal_page(sb, session, errors=errors, values=values, status=400)
                pm = payments.new_card_payment_method(sb, card["number"], card["exp_month"], card["exp_year"], name=card["name"])
                problem = _save_portal_card(sb, session, pm, authenticated=False)
                if problem == "action":
                    return _redirect(sb.url(f"/authenticate/{session['id']}"))
                if problem:
                    return _portal_page(sb, session, values=values, message=problem, status=402)
                return _portal_page(sb, session, notice="Votre carte est enregistrée.")
            if action == "update-sepa":
                customer = sb.store.ref("customer", session["customer"])
                if not any(sepa.is_sepa(pm) for pm in _paid_by(sb, customer)):
                    return _portal_page(sb, session, message="Le prélèvement SEPA n'est pas proposé ici.", status=400)
                values = dict(form)
                errors, account = _read_sepa(form, ask_email=not customer["email"])
                if account is None:
                    return _portal_page(sb, session, errors=errors, values=values, status=400)
                mandate = _save_portal_account(sb, session, account, _acceptance(request))
                reference = mandate["payment_method_details"]["sepa_debit"]["reference"]
                return _portal_page(sb, session, notice=f"Votre compte bancaire est enregistré (mandat {reference}) : les "
                                                        "prochains prélèvements se feront sur ce compte.")
            return _portal_page(sb, session, message="Action inconnue.", status=400)
        except StripeError as exc:
            return _portal_page(sb, session, message=exc.message, status=400)
        finally:
            sb.save()
