"""Routes for payment intents, setup intents, charges, refunds, disputes, balance, payouts and events."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stripe_sandbox import catalog, money, payments, sepa
from stripe_sandbox.api import get_or_404, list_response, route, search_response
from stripe_sandbox.encoding import Params, merge_metadata
from stripe_sandbox.errors import StripeError, invalid
from stripe_sandbox.routes_core import card_from_params, updated
from stripe_sandbox.state import public

if TYPE_CHECKING:
    from stripe_sandbox.sandbox import Sandbox

PI_CONFIRM = {
    "payment_method", "payment_method_data", "off_session", "return_url", "setup_future_usage", "receipt_email",
    "error_on_requires_action", "mandate", "mandate_data", "use_stripe_sdk", "payment_method_options", "payment_method_types", "capture_method",
}
PI_FIELDS = {
    "amount", "currency", "customer", "description", "metadata", "statement_descriptor", "statement_descriptor_suffix",
    "automatic_payment_methods", "confirmation_method", "confirm", "shipping", "allowed_payment_method_types",
} | PI_CONFIRM


def _off_session(p: Params) -> bool:
    value = p.raw("off_session")
    if value in (None, "", "false"):
        return False
    if value in ("true", "one_off", "recurring"):
        return True
    raise invalid(f"Invalid off_session: {value}", "off_session")


def _payment_method_param(sb: Sandbox, p: Params) -> dict[str, Any] | None:
    if pm_id := p.str("payment_method"):
        return payments.resolve_payment_method(sb, pm_id)
    if "payment_method_data" in p:
        data = p.dict("payment_method_data")
        data.check_known({"type", "card", "sepa_debit", "billing_details", "metadata"})
        kind = data.str("type", required=True)
        if kind == "sepa_debit":
            return sepa.from_params(sb, data)
        if kind != "card":
            raise invalid("The sandbox supports card and sepa_debit payment methods.", "payment_method_data[type]")
        card = data.dict("card")
        card.check_known({"token", "number", "exp_month", "exp_year", "cvc"})
        return card_from_params(sb, card)
    return None


def _check_mandate(sb: Sandbox, p: Params, mandate: str, pm: dict[str, Any] | None) -> None:
    if "mandate_data" in p:
        raise invalid("You cannot pass both `mandate` and `mandate_data`: a payment uses an existing mandate or makes a new "
                      "one.", "mandate")
    if pm is not None:
        sepa.given_mandate(sb, mandate, pm)


def _confirm_pi(sb: Sandbox, pi: dict[str, Any], p: Params) -> dict[str, Any]:
    """Confirm and answer like Stripe: the PaymentIntent, or a 402 card error carrying it."""
    off_session = _off_session(p)
    mandate = p.str("mandate")
    if mandate:
        _check_mandate(sb, p, mandate, sb.store.ref("payment_method", pi["payment_method"]) if pi["payment_method"] else None)
    status = payments.confirm_payment_intent(sb, pi, off_session=off_session, return_url=p.str("return_url"),
                                             mandate_data=sepa.parse_mandate_data(p), mandate=mandate)
    if status == "requires_action" and p.bool("error_on_requires_action", default=False):
        payments.fail_authentication(sb, pi)
        pi["last_payment_error"].update(
            code="authentication_required",
            type="card_error",
            decline_code="authentication_required",
            message="Your card was declined. This transaction requires authentication.",
        )
    error = pi["last_payment_error"]
    if pi["status"] == "requires_payment_method" and error and error["type"] == "card_error":
        extra = {
            "charge": error.get("charge"),
            "payment_intent": sb.view(pi),
            "payment_method": error["payment_method"],
            "advice_code": error.get("advice_code"),
        }
        raise StripeError(
            402, error["message"],
            type="card_error", code=error["code"], decline_code=error.get("decline_code"),
            extra={k: v for k, v in extra.items() if v is not None},
        )
    return sb.view(pi)


@route("POST", "/v1/payment_intents")
def create_payment_intent(sb: Sandbox, p: Params) -> dict[str, Any]:
    p.check_known(PI_FIELDS)
    if p.str("capture_method", default="automatic") not in ("automatic", "automatic_async"):
        raise invalid("The sandbox supports capture_method=automatic only.", "capture_method")
    confirm = p.bool("confirm", default=False)
    if "off_session" in p and not confirm:
        raise invalid("You can only pass `off_session` when `confirm` is true.", "off_session")
    if "mandate" in p and not confirm:
        raise invalid("The `mandate` parameter can only be used with `confirm=true`.", "mandate")
    amount = p.int("amount", required=True, minimum=1)
    currency = catalog.parse_currency(p)
    customer_id = p.str("customer")
    customer = catalog.find_customer(sb, customer_id)["id"] if customer_id else None
    pm = _payment_method_param(sb, p)
    if pm is not None:
        payments.check_payment_method_owner(sb, customer, pm)
    if confirm and pm is None:
        raise invalid("You must provide a `payment_method` (or `payment_method_data`) to confirm this PaymentIntent.", "payment_method", "parameter_missing")
    if confirm and pm is not None and (mandate := p.str("mandate")):  # checked before anything is made, as Stripe does
        _check_mandate(sb, p, mandate, pm)
    sfu = p.str("setup_future_usage", choices=("on_session", "off_session"))
    pi = payments.new_payment_intent(
        sb,
        amount=amount,
        currency=currency,
        customer=customer,
        payment_method=pm["id"] if pm else None,
        metadata=p.metadata() or {},
        description=p.str("description"),
        setup_future_usage=sfu,
        receipt_email=p.str("receipt_email"),
        statement_descriptor=p.str("statement_descriptor"),
        statement_descriptor_suffix=p.str("statement_descriptor_suffix"),
        payment_method_types=p.strings("allowed_payment_method_types") or p.strings("payment_method_types") or None,
        shipping=payments.parse_shipping(p) if "shipping" in p else None,
    )
    if confirm:
        return _confirm_pi(sb, pi, p)
    return sb.view(pi)


@route("GET", "/v1/payment_intents/search")
def search_payment_intents(sb: Sandbox, p: Params) -> dict[str, Any]:
    return search_response(sb, "payment_intent", p, "/v1/payment_intents/search")


@route("GET", "/v1/payment_intents/{ident}")
def get_payment_intent(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    p.check_known({"client_secret"})
    return sb.view(get_or_404(sb, "payment_intent", ident))


@route("POST", "/v1/payment_intents/{ident}")
def update_payment_intent(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    p.check_known({
        "amount", "currency", "customer", "description", "metadata", "payment_method", "receipt_email", "setup_future_usage",
        "statement_descriptor", "statement_descriptor_suffix", "shipping",
    })
    pi = get_or_404(sb, "payment_intent", ident)
    if pi["status"] in ("succeeded", "canceled", "processing"):
        raise invalid(f"This PaymentIntent's status is {pi['status']}; it can no longer be updated.", code="payment_intent_unexpected_state")
    if "amount" in p:  # a blank amount is a missing one, not an amount of None
        pi["amount"] = p.int("amount", required=True, minimum=1)
    if "currency" in p:
        pi["currency"] = catalog.parse_currency(p)
    if "customer" in p:  # the sandbox cannot unset a customer: a blank one is a missing one
        pi["customer"] = catalog.find_customer(sb, p.str("customer", required=True))["id"]
    for field in ("description", "receipt_email", "statement_descriptor", "statement_descriptor_suffix", "setup_future_usage"):
        if field in p:
            pi[field] = p.str(field)
    if "shipping" in p:
        pi["shipping"] = payments.parse_shipping(p)
    if pm_id := p.str("payment_method"):
        pm = payments.resolve_payment_method(sb, pm_id)
        payments.check_payment_method_owner(sb, pi["customer"], pm)
        pi["payment_method"] = pm["id"]
        pi["status"] = "requires_confirmation"
    pi["metadata"] = merge_metadata(pi["metadata"], p.metadata())
    return sb.view(pi)  # Stripe has no payment_intent.updated event


@route("POST", "/v1/payment_intents/{ident}/confirm")
def confirm_payment_intent(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    p.check_known(PI_CONFIRM | {"client_secret"})
    pi = get_or_404(sb, "payment_intent", ident)
    pm = _payment_method_param(sb, p)
    if pm is not None:
        payments.check_payment_method_owner(sb, pi["customer"], pm)
        pi["payment_method"] = pm["id"]
    if "setup_future_usage" in p:
        pi["setup_future_usage"] = p.str("setup_future_usage")
    if "receipt_email" in p:
        pi["receipt_email"] = p.str("receipt_email")
    return _confirm_pi(sb, pi, p)


@route("POST", "/v1/payment_intents/{ident}/cancel")
def cancel_payment_intent(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    p.check_known({"cancellation_reason"})
    pi = get_or_404(sb, "payment_intent", ident)
    if pi.get("_invoice"):
        raise invalid(
            "You cannot cancel this PaymentIntent because it was created by an invoice. Void the invoice instead.",
            code="payment_intent_unexpected_state",
        )
    payments.cancel_payment_intent(sb, pi, p.str("cancellation_reason", choices=("duplicate", "fraudulent", "requested_by_customer", "abandoned")))
    return sb.view(pi)


@route("GET", "/v1/payment_intents")
def list_payment_intents(sb: Sandbox, p: Params) -> dict[str, Any]:
    customer = p.str("customer")
    return list_response(sb, "payment_intent", p, "/v1/payment_intents", lambda o: customer in (None, o["customer"]), extra={"customer"})


# setup intents -----------------------------------------------------------------


def _confirm_seti(sb: Sandbox, seti: dict[str, Any], p: Params) -> dict[str, Any]:
    payments.confirm_setup_intent(sb, seti, return_url=p.str("return_url"), mandate_data=sepa.parse_mandate_data(p))
    error = seti["last_setup_error"]
    if seti["status"] == "requires_payment_method" and error and error["type"] == "card_error":
        raise StripeError(
            402, error["message"],
            type="card_error", code=error["code"], decline_code=error.get("decline_code"),
            extra={"setup_intent": sb.view(seti), "payment_method": error["payment_method"]},
        )
    return sb.view(seti)


@route("POST", "/v1/setup_intents")
def create_setup_intent(sb: Sandbox, p: Params) -> dict[str, Any]:
    p.check_known({
        "customer", "payment_method", "payment_method_data", "metadata", "usage", "description", "confirm", "return_url",
        "payment_method_types", "allowed_payment_method_types", "automatic_payment_methods", "mandate_data", "use_stripe_sdk",
        "payment_method_options",
    })
    customer_id = p.str("customer")
    customer = catalog.find_customer(sb, customer_id)["id"] if customer_id else None
    pm = _payment_method_param(sb, p)
    if pm is not None:
        payments.check_payment_method_owner(sb, customer, pm)
    seti = payments.new_setup_intent(
        sb,
        customer=customer,
        payment_method=pm["id"] if pm else None,
        metadata=p.metadata() or {},
        usage=p.str("usage", default="off_session", choices=("on_session", "off_session")),
        description=p.str("description"),
        payment_method_types=p.strings("allowed_payment_method_types") or p.strings("payment_method_types") or None,
    )
    if p.bool("confirm", default=False):
        return _confirm_seti(sb, seti, p)
    return sb.view(seti)


@route("GET", "/v1/setup_intents/{ident}")
def get_setup_intent(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    p.check_known({"client_secret"})
    return sb.view(get_or_404(sb, "setup_intent", ident))


@route("POST", "/v1/setup_intents/{ident}")
def update_setup_intent(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    p.check_known({"customer", "payment_method", "metadata", "description"})
    seti = get_or_404(sb, "setup_intent", ident)
    if "customer" in p:  # the sandbox cannot unset a customer: a blank one is a missing one
        seti["customer"] = catalog.find_customer(sb, p.str("customer", required=True))["id"]
    if pm_id := p.str("payment_method"):
        seti["payment_method"] = payments.resolve_payment_method(sb, pm_id)["id"]
        seti["status"] = "requires_confirmation"
    if "description" in p:
        seti["description"] = p.str("description")
    seti["metadata"] = merge_metadata(seti["metadata"], p.metadata())
    return sb.view(seti)


@route("POST", "/v1/setup_intents/{ident}/confirm")
def confirm_setup_intent(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    p.check_known({"payment_method", "payment_method_data", "return_url", "mandate_data", "use_stripe_sdk", "client_secret",
                   "payment_method_options", "allowed_payment_method_types"})
    seti = get_or_404(sb, "setup_intent", ident)
    if types := p.strings("allowed_payment_method_types"):
        seti.update(allowed_payment_method_types=types, payment_method_types=types, automatic_payment_methods=None)
    pm = _payment_method_param(sb, p)
    if pm is not None:
        seti["payment_method"] = pm["id"]
    return _confirm_seti(sb, seti, p)


@route("POST", "/v1/setup_intents/{ident}/cancel")
def cancel_setup_intent(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    p.check_known({"cancellation_reason"})
    seti = get_or_404(sb, "setup_intent", ident)
    if seti["status"] in ("succeeded", "canceled"):
        raise invalid(f"You cannot cancel this SetupIntent because it has a status of {seti['status']}.", code="setup_intent_unexpected_state")
    seti.update(status="canceled", cancellation_reason=p.str("cancellation_reason"), next_action=None)
    sb.emit("setup_intent.canceled", seti)
    return sb.view(seti)


@route("GET", "/v1/setup_intents")
def list_setup_intents(sb: Sandbox, p: Params) -> dict[str, Any]:
    customer, pm = p.str("customer"), p.str("payment_method")
    return list_response(
        sb, "setup_intent", p, "/v1/setup_intents",
        lambda o: customer in (None, o["customer"]) and pm in (None, o["payment_method"]),
        extra={"customer", "payment_method", "attach_to_self"},
    )


# charges and refunds -------------------------------------------------------------


@route("GET", "/v1/charges/search")
def search_charges(sb: Sandbox, p: Params) -> dict[str, Any]:
    return search_response(sb, "charge", p, "/v1/charges/search")


@route("GET", "/v1/charges/{ident}")
def get_charge(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    return sb.view(get_or_404(sb, "charge", ident))


@route("POST", "/v1/charges/{ident}")
def update_charge(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    p.check_known({"metadata", "description", "receipt_email"})
    charge = get_or_404(sb, "charge", ident)
    before = sb.view(charge)
    charge["metadata"] = merge_metadata(charge["metadata"], p.metadata())
    for field in ("description", "receipt_email"):
        if field in p:
            charge[field] = p.str(field)
    return updated(sb, charge, before, "charge.updated")


@route("GET", "/v1/charges")
def list_charges(sb: Sandbox, p: Params) -> dict[str, Any]:
    customer, pi = p.str("customer"), p.str("payment_intent")
    return list_response(
        sb, "charge", p, "/v1/charges",
        lambda o: customer in (None, o["customer"]) and pi in (None, o["payment_intent"]),
        extra={"customer", "payment_intent", "transfer_group"},
    )


@route("POST", "/v1/refunds")
def create_refund(sb: Sandbox, p: Params) -> dict[str, Any]:
    p.check_known({"charge", "payment_intent", "amount", "reason", "metadata", "refund_application_fee", "reverse_transfer", "instructions_email"})
    charge_id, pi_id = p.str("charge"), p.str("payment_intent")
    if charge_id and pi_id:
        raise invalid("You may only specify one of these parameters: charge, payment_intent.", "payment_intent")
    if charge_id:
        charge = get_or_404(sb, "charge", charge_id)
    elif pi_id:
        pi = get_or_404(sb, "payment_intent", pi_id)
        if pi["status"] != "succeeded" or not pi["latest_charge"]:
            raise invalid(f"This PaymentIntent ({pi['id']}) does not have a successful charge to refund.", "payment_intent", "charge_not_refundable")
        charge = sb.store.ref("charge", pi["latest_charge"])
    else:
        raise invalid("One of the following params should be provided for this request: payment_intent or charge.", "charge", "parameter_missing")
    reason = p.str("reason", choices=("duplicate", "fraudulent", "requested_by_customer"))
    refund = payments.create_refund(sb, charge, p.int("amount"), reason=reason, metadata=p.metadata() or {})
    return sb.view(refund)


@route("GET", "/v1/refunds/{ident}")
def get_refund(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    return sb.view(get_or_404(sb, "refund", ident))


@route("POST", "/v1/refunds/{ident}")
def update_refund(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    p.check_known({"metadata"})
    refund = get_or_404(sb, "refund", ident)
    before = sb.view(refund)
    refund["metadata"] = merge_metadata(refund["metadata"], p.metadata())
    return updated(sb, refund, before, "refund.updated")


@route("GET", "/v1/refunds")
def list_refunds(sb: Sandbox, p: Params) -> dict[str, Any]:
    charge, pi = p.str("charge"), p.str("payment_intent")
    return list_response(
        sb, "refund", p, "/v1/refunds",
        lambda o: charge in (None, o["charge"]) and pi in (None, o["payment_intent"]),
        extra={"charge", "payment_intent"},
    )


# disputes --------------------------------------------------------------------


@route("GET", "/v1/disputes/{ident}")
def get_dispute(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    return sb.view(get_or_404(sb, "dispute", ident))


@route("POST", "/v1/disputes/{ident}")
def update_dispute(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    p.check_known({"evidence", "metadata", "submit", "intended_submission_method"})
    dispute = get_or_404(sb, "dispute", ident)
    if dispute["status"] not in ("needs_response", "warning_needs_response"):
        raise invalid(
            f"This dispute is {dispute['status']}; evidence can no longer be submitted.",
            code="dispute_already_closed" if dispute["status"] in ("won", "lost", "warning_closed") else None,
        )
    before = sb.view(dispute)
    evidence = p.dict("evidence")
    evidence.check_known(money.EVIDENCE_FIELDS)
    for field in evidence.data:
        dispute["evidence"][field] = evidence.str(field)
    dispute["metadata"] = merge_metadata(dispute["metadata"], p.metadata())
    submit = p.bool("submit", default=True)
    text = dispute["evidence"]["uncategorized_text"]
    if evidence.data:
        dispute["evidence_details"]["has_evidence"] = True
    if submit and evidence.data:
        dispute["evidence_details"]["submission_count"] += 1
        if not dispute["status"].startswith("warning"):
            dispute["status"] = "under_review"
    updated(sb, dispute, before, "charge.dispute.updated")
    if submit and text in ("winning_evidence", "losing_evidence"):
        money.close_dispute(sb, dispute, won=text == "winning_evidence")
    return sb.view(dispute)


@route("POST", "/v1/disputes/{ident}/close")
def close_dispute(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    p.check_known(set())
    dispute = get_or_404(sb, "dispute", ident)
    if dispute["status"] not in ("needs_response", "warning_needs_response", "under_review", "warning_under_review"):
        raise invalid(f"This dispute is already {dispute['status']}.", code="dispute_already_closed")
    money.close_dispute(sb, dispute, won=False)
    return sb.view(dispute)


@route("GET", "/v1/disputes")
def list_disputes(sb: Sandbox, p: Params) -> dict[str, Any]:
    charge, pi = p.str("charge"), p.str("payment_intent")
    return list_response(
        sb, "dispute", p, "/v1/disputes",
        lambda o: charge in (None, o["charge"]) and pi in (None, o["payment_intent"]),
        extra={"charge", "payment_intent"},
    )


# balance, balance transactions, payouts -------------------------------------------


@route("GET", "/v1/balance")
def get_balance(sb: Sandbox, p: Params) -> dict[str, Any]:
    return money.balance(sb)


@route("GET", "/v1/balance_transactions/{ident}")
def get_balance_transaction(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    return sb.view(get_or_404(sb, "balance_transaction", ident))


@route("GET", "/v1/balance_transactions")
def list_balance_transactions(sb: Sandbox, p: Params) -> dict[str, Any]:
    payout, kind, source, currency = p.str("payout"), p.str("type"), p.str("source"), p.str("currency")
    if payout and not get_or_404(sb, "payout", payout)["automatic"]:
        raise invalid("Balance transaction history can only be filtered on automatic transfers, not manual.", "payout")

    def where(txn: dict[str, Any]) -> bool:
        return payout in (None, txn.get("_payout")) and kind in (None, txn["type"]) and source in (None, txn["source"]) and currency in (None, txn["currency"])

    return list_response(sb, "balance_transaction", p, "/v1/balance_transactions", where, extra={"payout", "type", "source", "currency"})


@route("POST", "/v1/payouts")
def create_payout(sb: Sandbox, p: Params) -> dict[str, Any]:
    p.check_known({"amount", "currency", "metadata", "description", "statement_descriptor", "method", "destination", "source_type"})
    if sb.payout_schedule != "manual":
        raise invalid(
            "You cannot create manual payouts while automatic payouts are enabled "
            "(this sandbox pays out daily; start it with payout_schedule='manual').",
            code="payouts_not_allowed",
        )
    amount = p.int("amount", required=True, minimum=1)
    currency = catalog.parse_currency(p)
    available = money.available_amount(sb, currency)
    if amount > available:
        raise invalid(
            "You have insufficient funds in your Stripe account for this transfer. Your card balance is too low. "
            f"(available: {money.format_amount(available, currency)})",
            "amount",
            "balance_insufficient",
        )
    payout = money.create_payout(sb, amount, currency, automatic=False, metadata=p.metadata() or {}, description=p.str("description"), transactions=[])
    return sb.view(payout)


@route("GET", "/v1/payouts/{ident}")
def get_payout(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    return sb.view(get_or_404(sb, "payout", ident))


@route("POST", "/v1/payouts/{ident}")
def update_payout(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    p.check_known({"metadata"})
    payout = get_or_404(sb, "payout", ident)
    before = sb.view(payout)
    payout["metadata"] = merge_metadata(payout["metadata"], p.metadata())
    return updated(sb, payout, before, "payout.updated")


@route("GET", "/v1/payouts")
def list_payouts(sb: Sandbox, p: Params) -> dict[str, Any]:
    status = p.str("status")
    arrival = p.raw("arrival_date")
    from stripe_sandbox.api import created_filter

    in_range = created_filter(p, "arrival_date") if arrival is not None else (lambda value: True)
    return list_response(
        sb, "payout", p, "/v1/payouts",
        lambda o: status in (None, o["status"]) and in_range(o["arrival_date"]),
        extra={"status", "arrival_date", "destination"},
    )


# events --------------------------------------------------------------------------

EVENT_WINDOW = 30 * 86_400


@route("GET", "/v1/events/{ident}")
def get_event(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    return public(get_or_404(sb, "event", ident))


@route("GET", "/v1/events")
def list_events(sb: Sandbox, p: Params) -> dict[str, Any]:
    single = p.str("type")
    several = set(p.strings("types"))
    if single and several:
        raise invalid("You may only specify one of these parameters: type, types.", "types")
    delivery = p.bool("delivery_success")
    oldest = sb.now() - EVENT_WINDOW

    def type_ok(name: str) -> bool:
        if single:
            return name == single or (single.endswith("*") and name.startswith(single[:-1]))
        return not several or name in several

    def where(event: dict[str, Any]) -> bool:
        if event["created"] < oldest or not type_ok(event["type"]):
            return False
        return delivery is None or (event["pending_webhooks"] == 0) == delivery

    return list_response(sb, "event", p, "/v1/events", where, extra={"type", "types", "delivery_success"})


@route("GET", "/v1/mandates/{ident}")
def get_mandate(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    return sb.view(get_or_404(sb, "mandate", ident))
