"""Payment methods, PaymentIntents, SetupIntents, charges and refunds."""

from __future__ import annotations

import copy
import secrets
from typing import TYPE_CHECKING, Any

from stripe_sandbox import cards, money, sepa
from stripe_sandbox.errors import StripeError, invalid, not_found, unexpected_state

if TYPE_CHECKING:
    from stripe_sandbox.encoding import Params
    from stripe_sandbox.sandbox import Sandbox

EMPTY_ADDRESS = {"city": None, "country": None, "line1": None, "line2": None, "postal_code": None, "state": None}
CARD_OPTIONS = {"installments": None, "mandate_options": None, "network": None, "request_three_d_secure": "automatic"}


def billing_details(name: str | None = None, email: str | None = None) -> dict[str, Any]:
    return {"address": dict(EMPTY_ADDRESS), "email": email, "name": name, "phone": None, "tax_id": None}


# payment methods -----------------------------------------------------------


def new_card_payment_method(
    sb: Sandbox, number: str, exp_month: int, exp_year: int, *, name: str | None = None, email: str | None = None, metadata: dict[str, str] | None = None
) -> dict[str, Any]:
    card = cards.card_for(number)
    brand = card.brand
    pm = {
        "id": sb.store.new_id("payment_method"),
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": billing_details(name, email),
        "card": {
            "brand": brand,
            "checks": {"address_line1_check": None, "address_postal_code_check": None, "cvc_check": "pass"},
            "country": "US",
            "display_brand": brand,
            "exp_month": exp_month,
            "exp_year": exp_year,
            "fingerprint": card.fingerprint,
            "funding": "credit",
            "generated_from": None,
            "last4": card.last4,
            "networks": {"available": [brand], "preferred": None},
            "regulated_status": "unregulated",
            "three_d_secure_usage": {"supported": True},
            "wallet": None,
        },
        "created": sb.now(),
        "customer": None,
        "customer_account": None,
        "livemode": False,
        "metadata": metadata or {},
        "type": "card",
        "_number": number,
        "_set_up": False,
    }
    return sb.store.put("payment_method", pm)


def test_card_expiry(sb: Sandbox) -> tuple[int, int]:
    import datetime as dt

    today = dt.datetime.fromtimestamp(sb.now(), dt.UTC)
    return 12, today.year + 5


def resolve_payment_method(sb: Sandbox, value: str, param: str = "payment_method") -> dict[str, Any]:
    """A stored PaymentMethod, or a new one from a test PaymentMethod/token name (``pm_card_visa``, ``tok_visa``)."""
    number = cards.TEST_PAYMENT_METHODS.get(value) or cards.TEST_TOKENS.get(value)
    if number:
        month, year = test_card_expiry(sb)
        return new_card_payment_method(sb, number, month, year)
    pm = sb.store.get("payment_method", value)
    if pm is None:
        raise not_found("PaymentMethod", value, param)
    return pm


NO_CARD = cards.Card("0000000000000000")  # a bank account: none of a card's behaviours apply


def card_of(pm: dict[str, Any]) -> cards.Card:
    return cards.card_for(pm["_number"]) if pm.get("type", "card") == "card" else NO_CARD


def card_error(outcome: cards.Outcome, *, param: str | None = None, extra: dict[str, Any] | None = None) -> StripeError:
    return StripeError(402, outcome.message, type="card_error", code=outcome.code, decline_code=outcome.decline_code, param=param, extra=extra)


def attach(sb: Sandbox, pm: dict[str, Any], customer_id: str, *, validate: bool = True) -> None:
    if pm["customer"] == customer_id:
        return
    if pm["customer"]:
        raise invalid("The payment method you provided has already been attached to a customer.", "payment_method", "payment_method_unexpected_state")
    if validate:
        outcome = cards.setup_outcome(card_of(pm), authenticated=True)
        if outcome.kind == "declined":
            raise card_error(outcome, param="payment_method")
    pm["customer"] = customer_id
    sb.emit("payment_method.attached", pm)


def detach(sb: Sandbox, pm: dict[str, Any]) -> None:
    if not pm["customer"]:
        raise invalid(
            "The payment method you provided is not attached to a customer so detachment is impossible.",
            "payment_method",
            "payment_method_unexpected_state",
        )
    previous = {"customer": pm["customer"]}
    customer = sb.store.get("customer", pm["customer"])
    pm["customer"] = None
    if customer and customer["invoice_settings"]["default_payment_method"] == pm["id"]:
        customer["invoice_settings"]["default_payment_method"] = None
    sb.emit("payment_method.detached", pm, previous)


# payment intents -----------------------------------------------------------

MAXIMUM_AMOUNT = 99_999_999


def check_amount(amount: int, currency: str, *, for_invoice: bool = False) -> None:
    """Stripe's bounds on a PaymentIntent's amount (an invoice's may be below the card minimum)."""
    minimum = 1 if for_invoice else money.MINIMUMS.get(currency, 1)
    if amount < minimum:
        raise invalid(f"Amount must be at least {money.format_amount(minimum, currency)}", "amount", "amount_too_small")
    if amount > MAXIMUM_AMOUNT:
        raise invalid("Amount must be no more than 999,999.99", "amount", "amount_too_large")


ADDRESS_FIELDS = tuple(EMPTY_ADDRESS)


def parse_shipping(p: Params) -> dict[str, Any] | None:
    """A ``shipping`` hash as Stripe stores it on a PaymentIntent and its charges (``shipping=`` clears it)."""
    if p.raw("shipping") == "":
        return None
    shipping = p.dict("shipping")
    shipping.check_known({"address", "name", "carrier", "phone", "tracking_number"})
    address = shipping.dict("address")
    address.check_known(ADDRESS_FIELDS)
    if "address" not in shipping:
        raise invalid("Missing required param: shipping[address].", "shipping[address]", "parameter_missing")
    return {
        "address": {field: address.str(field) for field in ADDRESS_FIELDS},
        "carrier": shipping.str("carrier"),
        "name": shipping.str("name", required=True),
        "phone": shipping.str("phone"),
        "tracking_number": shipping.str("tracking_number"),
    }


def new_payment_intent(
    sb: Sandbox,
    *,
    amount: int,
    currency: str,
    customer: str | None = None,
    payment_method: str | None = None,
    metadata: dict[str, str] | None = None,
    description: str | None = None,
    setup_future_usage: str | None = None,
    receipt_email: str | None = None,
    statement_descriptor: str | None = None,
    statement_descriptor_suffix: str | None = None,
    payment_method_types: list[str] | None = None,
    invoice: str | None = None,
    shipping: dict[str, Any] | None = None,
) -> dict[str, Any]:
    ident = sb.store.new_id("payment_intent")
    check_amount(amount, currency, for_invoice=invoice is not None)
    pi = {
        "id": ident,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": None if payment_method_types else {"allow_redirects": "always", "enabled": True},
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": "automatic",
        "client_secret": f"{ident}_secret_{secrets.token_urlsafe(18).replace('-', 'x').replace('_', 'y')}",
        "confirmation_method": "automatic",
        "created": sb.now(),
        "currency": currency,
        "customer": customer,
        "customer_account": None,
        "description": description,
        "excluded_payment_method_types": None,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "managed_payments": {"enabled": False},
        "metadata": metadata or {},
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": payment_method,
        "payment_method_configuration_details": None,
        "payment_method_options": {"card": dict(CARD_OPTIONS)},
        "payment_method_types": payment_method_types or ["card"],
        "allowed_payment_method_types": payment_method_types or ["card"],  # endive's name; the old one stays in the resource
        "payment_record": None,
        "payment_details": None,
        "presentment_details": None,
        "hooks": None,
        "processing": None,
        "receipt_email": receipt_email,
        "review": None,
        "setup_future_usage": setup_future_usage,
        "shipping": shipping,
        "source": None,
        "statement_descriptor": statement_descriptor,
        "statement_descriptor_suffix": statement_descriptor_suffix,
        "status": "requires_confirmation" if payment_method else "requires_payment_method",
        "transfer_data": None,
        "transfer_group": None,
        "_invoice": invoice,
    }
    sb.store.put("payment_intent", pi)
    sb.emit("payment_intent.created", pi)
    return pi


def check_payment_method_owner(sb: Sandbox, customer: str | None, pm: dict[str, Any]) -> None:
    if pm["customer"] and customer != pm["customer"]:
        if customer is None:
            raise invalid(
                "The provided PaymentMethod was previously used with a PaymentIntent without Customer attachment, "
                "shared with a connected account without Customer attachment, or was detached from a Customer. "
                "It may not be used again. To use a PaymentMethod multiple times, you must attach it to a Customer first. "
                "(It belongs to a Customer: pass `customer` too.)",
                "payment_method",
            )
        raise invalid(f"The provided PaymentMethod belongs to another Customer than {customer}.", "payment_method")


def confirmable(pi: dict[str, Any]) -> None:
    if pi["status"] not in ("requires_payment_method", "requires_confirmation", "requires_action"):
        raise unexpected_state(
            f"This PaymentIntent's status is {pi['status']}, but it must be requires_payment_method, "
            "requires_confirmation or requires_action to be confirmed."
        )
    if not pi["payment_method"]:
        raise unexpected_state(
            "You cannot confirm this PaymentIntent because it's missing a payment method. "
            "Update the PaymentIntent with a payment method and then confirm it again."
        )


def confirm_payment_intent(
    sb: Sandbox, pi: dict[str, Any], *, off_session: bool, authenticated: bool = False, return_url: str | None = None,
    mandate_data: dict[str, Any] | None = None, mandate: str | None = None,
) -> str:
    """Attempt the payment; returns the PaymentIntent's new status. Emits the events; never raises card errors
    (``mandate``: the id of the PaymentMethod's existing mandate the payment is made under)."""
    confirmable(pi)
    pm = sb.store.ref("payment_method", pi["payment_method"])
    if mandate:
        sepa.given_mandate(sb, mandate, pm)
    if sepa.is_sepa(pm):
        return sepa.confirm(sb, pi, pm, off_session=off_session, mandate_data=mandate_data)
    outcome = cards.payment_outcome(card_of(pm), off_session=off_session, set_up=pm["_set_up"], authenticated=authenticated)
    pi["_off_session"] = off_session
    if outcome.kind == "requires_action" or (outcome.code == "authentication_required" and pi["_invoice"]):
        _require_action(sb, pi, return_url)
        return pi["status"]
    charge = _new_charge(sb, pi, pm, outcome, authenticated=authenticated)
    if outcome.kind == "declined":
        pi["status"] = "requires_payment_method"
        pi["payment_method"] = None
        pi["next_action"] = None
        pi["latest_charge"] = charge["id"]
        pi["last_payment_error"] = {
            "advice_code": "try_again_later" if outcome.decline_code == "insufficient_funds" else None,
            "charge": charge["id"],
            "code": outcome.code,
            "decline_code": outcome.decline_code,
            "doc_url": outcome.doc_url,
            "message": outcome.message,
            "network_decline_code": None,
            "payment_method": sb.view(pm),
            "type": "card_error",
        }
        sb.emit("charge.failed", charge)
        sb.emit("payment_intent.payment_failed", pi)
        invoice_hook(sb, pi, paid=False)
        return pi["status"]
    txn = money.charge_transaction(sb, charge, bypass_pending=card_of(pm).behaviour == cards.BYPASS_PENDING)
    charge["balance_transaction"] = txn["id"]
    pi.update(status="succeeded", amount_received=pi["amount"], latest_charge=charge["id"], next_action=None, last_payment_error=None)
    if pi["customer"] and (pi["setup_future_usage"] or pi["_invoice"]):
        if not pm["customer"]:
            attach(sb, pm, pi["customer"], validate=False)
        pm["_set_up"] = True
    sb.emit("charge.succeeded", charge)
    sb.emit("payment_intent.succeeded", pi)
    invoice_hook(sb, pi, paid=True)
    behaviour = card_of(pm).behaviour
    if behaviour in (cards.DISPUTE, cards.INQUIRY):
        money.open_dispute(sb, charge, inquiry=behaviour == cards.INQUIRY)
    return pi["status"]


def _require_action(sb: Sandbox, pi: dict[str, Any], return_url: str | None) -> None:
    pi["status"] = "requires_action"
    pi["_return_url"] = return_url
    pi["next_action"] = {"redirect_to_url": {"return_url": return_url, "url": sb.url(f"/authenticate/{pi['id']}")}, "type": "redirect_to_url"}
    sb.emit("payment_intent.requires_action", pi)
    invoice_hook(sb, pi, paid=False)


def fail_authentication(sb: Sandbox, pi: dict[str, Any]) -> None:
    pm = sb.store.ref("payment_method", pi["payment_method"])
    pi["status"] = "requires_payment_method"
    pi["payment_method"] = None
    pi["next_action"] = None
    pi["last_payment_error"] = {
        "code": "payment_intent_authentication_failure",
        "doc_url": "https://stripe.com/docs/error-codes/payment-intent-authentication-failure",
        "message": (
            "The provided PaymentMethod has failed authentication. "
            "You can provide payment_method_data or a new PaymentMethod to attempt to fulfill this PaymentIntent again."
        ),
        "payment_method": sb.view(pm),
        "type": "invalid_request_error",
    }
    sb.emit("payment_intent.payment_failed", pi)
    invoice_hook(sb, pi, paid=False)


def invoice_hook(sb: Sandbox, pi: dict[str, Any], *, paid: bool) -> None:
    if pi.get("_invoice"):
        sb.invoice_attempted(pi, paid=paid)


def cancel_payment_intent(sb: Sandbox, pi: dict[str, Any], reason: str | None) -> None:
    if pi["status"] not in ("requires_payment_method", "requires_confirmation", "requires_action", "requires_capture"):
        raise unexpected_state(
            f"You cannot cancel this PaymentIntent because it has a status of {pi['status']}. Only a PaymentIntent with one of the "
            "following statuses may be canceled: requires_payment_method, requires_capture, requires_confirmation, requires_action, processing."
        )
    pi.update(status="canceled", canceled_at=sb.now(), cancellation_reason=reason, next_action=None)
    sb.emit("payment_intent.canceled", pi)


def new_charge(sb: Sandbox, pi: dict[str, Any], pm: dict[str, Any], *, pending: bool, mandate: str | None) -> dict[str, Any]:
    """A bank debit's charge: ``pending`` until the bank answers (see sepa.py)."""
    return _new_charge(sb, pi, pm, cards.Outcome("succeeded"), authenticated=False, pending=pending, mandate=mandate)


def _card_details(pi: dict[str, Any], pm: dict[str, Any], ok: bool, authenticated: bool) -> dict[str, Any]:
    card = pm["card"]
    return {
        "card": {
            "amount_authorized": pi["amount"] if ok else None,
            "authorization_code": "123456" if ok else None,
            "brand": card["brand"],
            "checks": dict(card["checks"]),
            "country": card["country"],
            "exp_month": card["exp_month"],
            "exp_year": card["exp_year"],
            "extended_authorization": {"status": "disabled"},
            "fingerprint": card["fingerprint"],
            "funding": card["funding"],
            "incremental_authorization": {"status": "unavailable"},
            "installments": None,
            "last4": card["last4"],
            "mandate": None,
            "multicapture": {"status": "unavailable"},
            "network": card["brand"],
            "network_token": {"used": False},
            "network_transaction_id": secrets.token_hex(8) if ok else None,
            "overcapture": {"maximum_amount_capturable": pi["amount"], "status": "unavailable"},
            "regulated_status": "unregulated",
            "three_d_secure": _three_d_secure() if authenticated else None,
            "transaction_link_id": None,
            "wallet": None,
        },
        "type": "card",
    }


def _new_charge(sb: Sandbox, pi: dict[str, Any], pm: dict[str, Any], outcome: cards.Outcome, *, authenticated: bool,
                pending: bool = False, mandate: str | None = None) -> dict[str, Any]:
    ok = outcome.kind == "succeeded"
    ident = sb.store.new_id("charge")
    if ok:
        result = {"network_status": "approved_by_network", "reason": None, "seller_message": "Payment complete.", "type": "authorized"}
    else:
        result = {
            "network_status": "declined_by_network",
            "reason": outcome.decline_code,
            "seller_message": f"The bank returned the decline code `{outcome.decline_code}`.",
            "type": "issuer_declined",
        }
    charge = {
        "id": ident,
        "object": "charge",
        "amount": pi["amount"],
        "amount_captured": pi["amount"] if ok else 0,
        "amount_refunded": 0,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": None,
        "billing_details": copy.deepcopy(pm["billing_details"]),
        "calculated_statement_descriptor": "ENTRE-LAB SANDBOX",
        "captured": ok,
        "created": sb.now(),
        "currency": pi["currency"],
        "customer": pi["customer"],
        "description": pi["description"],
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": None if ok else outcome.code,
        "failure_message": None if ok else outcome.message,
        "fraud_details": {},
        "livemode": False,
        "metadata": dict(pi["metadata"]),
        "on_behalf_of": None,
        "outcome": {"advice_code": None, "network_advice_code": None, "network_decline_code": None, "risk_level": "normal", "risk_score": 20} | result,
        "paid": ok and not pending,
        "payment_intent": pi["id"],
        "payment_method": pm["id"],
        "payment_method_details": (sepa.payment_method_details(sb, pm, mandate) if sepa.is_sepa(pm)
                                   else _card_details(pi, pm, ok, authenticated)),
        "receipt_email": pi["receipt_email"],
        "receipt_number": None,
        "receipt_url": sb.url(f"/receipts/{ident}"),
        "refunded": False,
        "review": None,
        "shipping": pi.get("shipping"),
        "source": None,
        "source_transfer": None,
        "statement_descriptor": pi["statement_descriptor"],
        "statement_descriptor_suffix": pi["statement_descriptor_suffix"],
        "status": "pending" if pending else "succeeded" if ok else "failed",
        "transfer_data": None,
        "transfer_group": None,
        "_refunds": [],
    }
    return sb.store.put("charge", charge)


def _three_d_secure() -> dict[str, Any]:
    return {
        "authentication_flow": "challenge",
        "electronic_commerce_indicator": "05",
        "exemption_indicator": None,
        "result": "authenticated",
        "result_reason": None,
        "transaction_id": secrets.token_hex(16),
        "version": "2.2.0",
    }


# refunds -------------------------------------------------------------------


def create_refund(sb: Sandbox, charge: dict[str, Any], amount: int | None, *, reason: str | None, metadata: dict[str, str]) -> dict[str, Any]:
    if charge["status"] != "succeeded":
        raise invalid(f"Charge {charge['id']} has not succeeded and cannot be refunded.", "charge", "charge_not_refundable")
    disputes = [d for d in sb.store.all("dispute") if d["charge"] == charge["id"] and d["status"] in ("needs_response", "under_review", "lost", "won")]
    if disputes:
        raise invalid(f"Charge {charge['id']} has been charged back; cannot issue a refund.", "charge", "charge_disputed")
    remaining = charge["amount"] - charge["amount_refunded"]
    if remaining <= 0:
        raise invalid(f"Charge {charge['id']} has already been refunded.", "charge", "charge_already_refunded")
    if amount is None:
        amount = remaining
    if amount <= 0:
        raise invalid("Refund amount must be positive.", "amount")
    if amount > remaining:
        raise invalid(
            f"Refund amount ({money.format_amount(amount, charge['currency'])}) is greater than unrefunded amount on charge "
            f"({money.format_amount(remaining, charge['currency'])})",
            "amount",
            "amount_too_large",
        )
    refund = {
        "id": sb.store.new_id("refund"),
        "object": "refund",
        "amount": amount,
        "balance_transaction": None,
        "charge": charge["id"],
        "created": sb.now(),
        "currency": charge["currency"],
        "customer": charge["customer"],
        "customer_account": None,
        "destination_details": {
            "card": {"reference": None, "reference_status": "pending", "reference_type": "acquirer_reference_number", "type": "refund"},
            "type": "card",
        },
        "metadata": metadata,
        "payment_intent": charge["payment_intent"],
        "payment_method": charge["payment_method"],
        "reason": reason,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": "succeeded",
        "transfer_reversal": None,
    }
    pm = sb.store.get("payment_method", charge["payment_method"]) if charge.get("payment_method") else None
    if pm is not None and card_of(pm).behaviour == cards.REFUND_FAILS:
        refund["_fails_at"] = sb.now() + REFUND_FAILS_AFTER
    sb.store.put("refund", refund)
    refund["balance_transaction"] = money.refund_transaction(sb, refund)["id"]
    previous = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
    charge["amount_refunded"] += amount
    charge["refunded"] = charge["amount_refunded"] == charge["amount"]
    charge["_refunds"].append(refund["id"])
    sb.emit("refund.created", refund)
    sb.emit("charge.refunded", charge, previous)
    return refund


REFUND_FAILS_AFTER = 3_600  # "some time later", for the card that makes refunds fail
REFUND_FAILURES = ("lost_or_stolen_card", "expired_or_canceled_card", "charge_for_pending_refund_disputed", "insufficient_funds",
                   "declined", "merchant_request", "unknown")


def fail_refund(sb: Sandbox, refund: dict[str, Any], failure_reason: str = "expired_or_canceled_card") -> dict[str, Any]:
    """A refund the card network sends back: ``failed`` with its ``failure_reason``, a
    ``refund_failure`` balance transaction (the refund's amount back in the balance,
    ``failure_balance_transaction``), the charge's ``amount_refunded`` lowered; events
    ``refund.updated``, ``refund.failed`` and ``charge.refund.updated``."""
    if failure_reason not in REFUND_FAILURES:
        raise ValueError(f"failure_reason: one of {', '.join(REFUND_FAILURES)}")
    if refund["status"] not in ("pending", "succeeded"):
        raise ValueError(f"refund {refund['id']} is {refund['status']}: only a pending or succeeded refund can fail")
    before = sb.view(refund)
    charge = sb.store.ref("charge", refund["charge"])
    txn = money.refund_failure_transaction(sb, refund)
    refund.pop("_fails_at", None)
    refund.update(status="failed", failure_reason=failure_reason, failure_balance_transaction=txn["id"])
    refund["destination_details"]["card"]["reference_status"] = "unavailable"
    previous = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
    charge["amount_refunded"] -= refund["amount"]
    charge["refunded"] = False
    changed = {k: v for k, v in before.items() if sb.view(refund).get(k) != v}
    sb.emit("refund.updated", refund, changed)
    sb.emit("refund.failed", refund)
    sb.emit("charge.refund.updated", refund, changed)
    sb.emit("charge.updated", charge, previous)
    return refund


def refunds_next_due(sb: Sandbox) -> int | None:
    dues = [r["_fails_at"] for r in sb.store.scoped("refund") if r.get("_fails_at")]
    return min(dues) if dues else None


def run_refund_failures(sb: Sandbox) -> None:
    now = sb.now()
    for refund in sb.store.scoped("refund"):
        if refund.get("_fails_at") and refund["_fails_at"] <= now:
            fail_refund(sb, refund)


# setup intents -------------------------------------------------------------


def new_setup_intent(
    sb: Sandbox,
    *,
    customer: str | None,
    payment_method: str | None,
    metadata: dict[str, str] | None,
    usage: str = "off_session",
    description: str | None = None,
    payment_method_types: list[str] | None = None,
) -> dict[str, Any]:
    ident = sb.store.new_id("setup_intent")
    seti = {
        "id": ident,
        "object": "setup_intent",
        "application": None,
        "automatic_payment_methods": None if payment_method_types else {"allow_redirects": "always", "enabled": True},
        "cancellation_reason": None,
        "client_secret": f"{ident}_secret_{secrets.token_urlsafe(24).replace('-', 'x').replace('_', 'y')}",
        "created": sb.now(),
        "customer": customer,
        "description": description,
        "excluded_payment_method_types": None,
        "flow_directions": None,
        "last_setup_error": None,
        "latest_attempt": None,
        "livemode": False,
        "mandate": None,
        "metadata": metadata or {},
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": payment_method,
        "payment_method_configuration_details": None,
        "payment_method_options": {"card": {"mandate_options": None, "network": None, "request_three_d_secure": "automatic"}},
        "payment_method_types": payment_method_types or ["card"],
        "allowed_payment_method_types": payment_method_types or ["card"],
        "attach_to_self": None,
        "customer_account": None,
        "managed_payments": None,
        "single_use_mandate": None,
        "status": "requires_confirmation" if payment_method else "requires_payment_method",
        "usage": usage,
    }
    sb.store.put("setup_intent", seti)
    sb.emit("setup_intent.created", seti)
    return seti


def confirm_setup_intent(sb: Sandbox, seti: dict[str, Any], *, authenticated: bool = False, return_url: str | None = None,
                         mandate_data: dict[str, Any] | None = None) -> str:
    if seti["status"] not in ("requires_payment_method", "requires_confirmation", "requires_action"):
        raise unexpected_state(f"This SetupIntent's status is {seti['status']}; it cannot be confirmed.", "setup_intent_unexpected_state")
    if not seti["payment_method"]:
        raise unexpected_state("You cannot confirm this SetupIntent because it's missing a payment method.", "setup_intent_unexpected_state")
    pm = sb.store.ref("payment_method", seti["payment_method"])
    if sepa.is_sepa(pm):
        return sepa.confirm_setup(sb, seti, pm, mandate_data=mandate_data)
    outcome = cards.setup_outcome(card_of(pm), authenticated=authenticated)
    if outcome.kind == "requires_action":
        seti["status"] = "requires_action"
        seti["_return_url"] = return_url
        seti["next_action"] = {"redirect_to_url": {"return_url": return_url, "url": sb.url(f"/authenticate/{seti['id']}")}, "type": "redirect_to_url"}
        sb.emit("setup_intent.requires_action", seti)
    elif outcome.kind == "declined":
        seti["status"] = "requires_payment_method"
        seti["next_action"] = None
        seti["last_setup_error"] = {
            "code": outcome.code,
            "decline_code": outcome.decline_code,
            "doc_url": outcome.doc_url,
            "message": outcome.message,
            "payment_method": sb.view(pm),
            "type": "card_error",
        }
        sb.emit("setup_intent.setup_failed", seti)
    else:
        if seti["customer"] and pm["customer"] != seti["customer"]:
            attach(sb, pm, seti["customer"], validate=False)
        pm["_set_up"] = True
        seti.update(status="succeeded", next_action=None, last_setup_error=None)
        sb.emit("setup_intent.succeeded", seti)
    return seti["status"]


def fail_setup_authentication(sb: Sandbox, seti: dict[str, Any]) -> None:
    pm = sb.store.ref("payment_method", seti["payment_method"])
    seti["status"] = "requires_payment_method"
    seti["next_action"] = None
    seti["last_setup_error"] = {
        "code": "setup_intent_authentication_failure",
        "doc_url": "https://stripe.com/docs/error-codes/setup-intent-authentication-failure",
        "message": "The latest attempt to set up the payment method has failed because authentication failed.",
        "payment_method": sb.view(pm),
        "type": "invalid_request_error",
    }
    sb.emit("setup_intent.setup_failed", seti)
