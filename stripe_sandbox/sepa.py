"""SEPA Direct Debit as Stripe runs it: ``sepa_debit`` PaymentMethods made from an IBAN, the
mandate the customer accepts, and debits that are ``processing`` for days before they succeed
or fail.

- A PaymentMethod needs a valid IBAN of a SEPA country and the account holder's name and email
  (Stripe requires both for SEPA); anything else is refused with Stripe's error, nothing stored.
- Confirming a PaymentIntent (or a SetupIntent) on session needs ``mandate_data`` (the
  customer's acceptance): it makes a multi-use ``mandate`` that later off-session debits use.
- A debit is ``processing`` (its charge ``pending``: ``payment_intent.processing`` and
  ``charge.pending``) until its settlement, ``SETTLEMENT_BUSINESS_DAYS`` business days later on
  the sandbox's clock (Saturdays and Sundays are not business days). Then it succeeds (the
  charge's balance transaction appears only now: money in transit is not in the balance) or
  fails late (``charge.failed``, ``payment_intent.payment_failed``, the PaymentIntent back to
  ``requires_payment_method``); a failure that says the account or the authorisation is gone
  makes the mandate ``inactive`` (``mandate.updated``). An invoice paid by a debit stays open
  while it is processing and is paid (or failed) at the settlement.
- Stripe's documented test IBANs: …3201 / …02606 / …3000 succeed, …3203 / …02607 / …3002 fail
  (``insufficient_funds``), …3204 / …02600 / …3003 succeed and are disputed at once; their
  "after three minutes" variants behave like them here (the settlement already takes days).
  ``POST /_admin/sepa/fail`` arms the next settlement to fail with a given reason, for the
  reasons no test IBAN gives (``account_closed``, ``debit_not_authorized``, …).
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stripe_sandbox import money
from stripe_sandbox.errors import StripeError, invalid

if TYPE_CHECKING:
    from stripe_sandbox.encoding import Params
    from stripe_sandbox.sandbox import Sandbox

SETTLEMENT_BUSINESS_DAYS = 5  # "A payment typically takes 5 business days to arrive" (Stripe, SEPA Direct Debit)
DAY = 86_400

# The SEPA scheme's countries and territories whose IBANs Stripe takes for sepa_debit, with their IBAN's length.
IBAN_LENGTHS = {
    "AD": 24, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "EE": 20, "ES": 24, "FI": 18,
    "FR": 27, "GB": 22, "GI": 23, "GR": 27, "HR": 21, "HU": 28, "IE": 22, "IS": 26, "IT": 27, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MT": 31, "NL": 18, "NO": 15, "PL": 28, "PT": 25, "RO": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27,
    "VA": 22,
}
SEPA_COUNTRIES = frozenset(IBAN_LENGTHS)

CREDITOR = "Entre-Lab (bac à sable)"  # the creditor the customer's mandate authorises (the account's name)
# The mandate text Stripe shows beside a SEPA Direct Debit form (its French version), which the
# customer accepts by confirming: they authorise the creditor and Stripe to debit their account.
MANDATE_TEXT_FR = (
    "En fournissant vos informations de paiement et en confirmant ce paiement, vous autorisez (A) {creditor} et Stripe, "
    "notre prestataire de services de paiement, à envoyer des instructions à votre banque pour débiter votre compte, et "
    "(B) votre banque à débiter votre compte conformément à ces instructions. Vous avez, entre autres, le droit de vous "
    "faire rembourser par votre banque selon les conditions décrites dans la convention que vous avez passée avec elle. "
    "Toute demande de remboursement doit être présentée dans les 8 semaines suivant la date de débit de votre compte. "
    "Vos droits sont expliqués dans un document que vous pouvez obtenir auprès de votre banque. Vous acceptez de recevoir "
    "des notifications des débits à venir jusqu'à 2 jours avant leur réalisation."
)

SUCCEED, FAIL, DISPUTE = "succeed", "fail", "dispute"
TEST_IBANS: dict[str, str] = {
    "AT611904300234573201": SUCCEED, "AT861904300235473202": SUCCEED, "AT591904300235473203": FAIL,
    "AT321904300235473204": DISPUTE, "AT051904300235473205": FAIL,
    "FR1420041010050500013M02606": SUCCEED, "FR3020041010050500013M02609": SUCCEED, "FR8420041010050500013M02607": FAIL,
    "FR7920041010050500013M02600": DISPUTE, "FR5720041010050500013M02608": FAIL,
    "DE89370400440532013000": SUCCEED, "DE62370400440532013001": SUCCEED, "DE35370400440532013002": FAIL,
    "DE08370400440532013003": DISPUTE, "DE78370400440532013004": FAIL,
}
FAILURES = {
    "insufficient_funds": "The customer's account has insufficient funds to cover this payment.",
    "account_closed": "The customer's bank account has been closed.",
    "debit_not_authorized": "The customer has notified their bank that this payment was unauthorized.",
    "bank_account_restricted": "The customer's account cannot be used with the payment method.",
    "generic_could_not_process": "This payment could not be processed.",
}
# After these the mandate can no longer be used (the account is gone, or the debtor said no).
ENDS_MANDATE = {"account_closed", "debit_not_authorized", "bank_account_restricted"}


@dataclass(frozen=True)
class Iban:
    value: str

    @property
    def country(self) -> str:
        return self.value[:2]

    @property
    def last4(self) -> str:
        return self.value[-4:]

    @property
    def bank_code(self) -> str:
        lengths = {"FR": 5, "AT": 5, "DE": 8, "ES": 4, "IT": 5, "BE": 3, "NL": 4}
        return self.value[4:4 + lengths.get(self.country, 4)]

    @property
    def branch_code(self) -> str:
        return self.value[9:14] if self.country == "FR" else ""

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.value.encode()).hexdigest()[:16]

    @property
    def behaviour(self) -> str:
        return TEST_IBANS.get(self.value, SUCCEED)


def parse_iban(raw: str, param: str) -> Iban:
    """A valid IBAN of a SEPA country, or Stripe's refusal (``invalid_bank_account_iban``)."""
    value = "".join(raw.split()).upper()
    valid = (len(value) >= 15 and value[:2].isalpha() and value[2:4].isdigit() and value.isalnum()
             and IBAN_LENGTHS.get(value[:2], len(value)) == len(value)
             and int("".join(str(int(c, 36)) for c in value[4:] + value[:4])) % 97 == 1)
    if not valid:
        raise invalid("The provided IBAN is invalid.", param, "invalid_bank_account_iban")
    if value[:2] not in SEPA_COUNTRIES:
        raise invalid(f"The country of this IBAN ({value[:2]}) is not supported for SEPA Direct Debit.", param,
                      "invalid_bank_account_iban")
    return Iban(value)


def new_payment_method(sb: Sandbox, iban: Iban, *, name: str | None, email: str | None, param: str = "billing_details",
                       metadata: dict[str, str] | None = None) -> dict[str, Any]:
    from stripe_sandbox.payments import billing_details

    if not name:
        raise invalid("Missing required param: billing_details[name].", f"{param}[name]", "parameter_missing")
    if not email:
        raise invalid("Missing required param: billing_details[email].", f"{param}[email]", "parameter_missing")
    pm = {
        "id": sb.store.new_id("payment_method"),
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": billing_details(name, email),
        "created": sb.now(),
        "customer": None,
        "customer_account": None,
        "livemode": False,
        "metadata": metadata or {},
        "sepa_debit": {
            "bank_code": iban.bank_code, "branch_code": iban.branch_code, "country": iban.country,
            "fingerprint": iban.fingerprint, "generated_from": {"charge": None, "setup_attempt": None}, "last4": iban.last4,
        },
        "type": "sepa_debit",
        "_iban": iban.value,
        "_set_up": False,
        "_mandate": None,
    }
    return sb.store.put("payment_method", pm)


def from_params(sb: Sandbox, p: Params) -> dict[str, Any]:
    """A sepa_debit PaymentMethod from ``sepa_debit[iban]`` and ``billing_details``."""
    data = p.dict("sepa_debit")
    data.check_known({"iban"})
    iban = parse_iban(data.str("iban", required=True), data._name("iban"))
    details = p.dict("billing_details")
    return new_payment_method(sb, iban, name=details.str("name"), email=details.str("email"),
                              param=p._name("billing_details"), metadata=p.metadata() or {})


def is_sepa(pm: dict[str, Any]) -> bool:
    return pm.get("type") == "sepa_debit"


# mandates ----------------------------------------------------------------------------------------


def parse_mandate_data(p: Params) -> dict[str, Any] | None:
    """``mandate_data[customer_acceptance]`` as the mandate keeps it (None when absent)."""
    if "mandate_data" not in p:
        return None
    data = p.dict("mandate_data")
    data.check_known({"customer_acceptance"})
    acceptance = data.dict("customer_acceptance")
    acceptance.check_known({"type", "accepted_at", "online", "offline"})
    kind = acceptance.str("type", required=True, choices=("online", "offline"))
    online = acceptance.dict("online")
    online.check_known({"ip_address", "user_agent"})
    accepted: dict[str, Any] = {"accepted_at": acceptance.int("accepted_at"), "type": kind, "offline": None, "online": None}
    if kind == "online":
        accepted["online"] = {"ip_address": online.str("ip_address", required=True),
                              "user_agent": online.str("user_agent", required=True)}
    else:
        accepted["offline"] = {}
    return accepted


def ensure_mandate(sb: Sandbox, pm: dict[str, Any], acceptance: dict[str, Any] | None, *, off_session: bool) -> dict[str, Any]:
    """The PaymentMethod's active mandate, or a new one from the customer's acceptance."""
    current = sb.store.get("mandate", pm["_mandate"]) if pm.get("_mandate") else None
    if acceptance is None and current is not None and current["status"] == "active":
        return current
    if acceptance is None:
        if current is not None:
            raise invalid("The mandate of this PaymentMethod is no longer active: collect a new one.", "payment_method",
                          "payment_method_unexpected_state")
        raise invalid("A sepa_debit payment needs the customer's acceptance of a mandate: pass mandate_data"
                      + ("" if not off_session else ", or use a PaymentMethod that has one") + ".",
                      "mandate_data", "parameter_missing")
    ident = "mandate_" + secrets.token_hex(12)
    mandate = {
        "id": ident,
        "object": "mandate",
        "customer_acceptance": {**acceptance, "accepted_at": acceptance.get("accepted_at") or sb.now()},
        "livemode": False,
        "multi_use": {},
        "payment_method": pm["id"],
        "payment_method_details": {
            "sepa_debit": {"reference": secrets.token_hex(8).upper(), "url": sb.url(f"/mandates/{ident}")},
            "type": "sepa_debit",
        },
        "status": "active",
        "type": "multi_use",
    }
    sb.store.put("mandate", mandate)
    pm["_mandate"] = ident
    pm["_set_up"] = True
    return mandate


def given_mandate(sb: Sandbox, mandate_id: str, pm: dict[str, Any]) -> dict[str, Any]:
    """The mandate a payment names (``mandate``): it must exist, be the PaymentMethod's and be active."""
    mandate = sb.store.get("mandate", mandate_id)
    if mandate is None:
        raise StripeError(404, f"No such mandate: '{mandate_id}'", param="mandate", code="resource_missing")
    if mandate["payment_method"] != pm["id"]:
        raise invalid(f"The mandate {mandate_id} does not belong to the PaymentMethod {pm['id']}.", "mandate")
    if mandate["status"] != "active":
        raise invalid(f"The mandate {mandate_id} is {mandate['status']}: it cannot be used for a payment. Collect a new one.",
                      "mandate", "payment_method_unexpected_state")
    return mandate


def end_mandate(sb: Sandbox, mandate: dict[str, Any]) -> None:
    if mandate["status"] != "inactive":
        mandate["status"] = "inactive"
        sb.emit("mandate.updated", mandate, {"status": "active"})


# debits --------------------------------------------------------------------------------------------


def settlement_time(start: int, business_days: int = SETTLEMENT_BUSINESS_DAYS) -> int:
    """``business_days`` business days after ``start`` (Saturdays and Sundays skipped), same time of day."""
    day = dt.datetime.fromtimestamp(start, dt.UTC)
    left = business_days
    while left:
        day += dt.timedelta(days=1)
        if day.weekday() < 5:
            left -= 1
    return int(day.timestamp())


def confirm(sb: Sandbox, pi: dict[str, Any], pm: dict[str, Any], *, off_session: bool,
            mandate_data: dict[str, Any] | None) -> str:
    """Start the debit: the PaymentIntent ``processing``, its charge ``pending`` until the settlement."""
    from stripe_sandbox import payments

    if pi["currency"] != "eur":
        raise invalid(f"The currency provided ({pi['currency']}) is invalid. Payments with sepa_debit support the "
                      "following currencies: eur.", "currency", "payment_intent_invalid_parameter")
    allowed = pi["payment_method_types"] if pi["automatic_payment_methods"] is None else None
    if allowed and "sepa_debit" not in allowed:
        raise invalid(f"The PaymentMethod provided (sepa_debit) is not allowed for this PaymentIntent. Please attach a "
                      f"PaymentMethod of one of the following types: {', '.join(allowed)}.", "payment_method",
                      "payment_intent_incompatible_payment_method")
    mandate = ensure_mandate(sb, pm, mandate_data, off_session=off_session)
    pi["_off_session"] = off_session
    charge = payments.new_charge(sb, pi, pm, pending=True, mandate=mandate["id"])
    pi.update(status="processing", latest_charge=charge["id"], next_action=None, last_payment_error=None)
    if pi["customer"] and not pm["customer"] and (pi["setup_future_usage"] or pi.get("_invoice")):
        payments.attach(sb, pm, pi["customer"], validate=False)
    pi["_settles_at"] = settlement_time(sb.now())
    if pi.get("_invoice"):
        invoice = sb.store.get("invoice", pi["_invoice"])
        if invoice is not None:
            invoice["next_payment_attempt"] = None  # nothing to retry while the debit is in flight
    sb.emit("charge.pending", charge)
    sb.emit("payment_intent.processing", pi)
    return str(pi["status"])


def confirm_setup(sb: Sandbox, seti: dict[str, Any], pm: dict[str, Any], *, mandate_data: dict[str, Any] | None) -> str:
    """A SetupIntent with a sepa_debit PaymentMethod: the mandate is what is set up. It needs the
    customer's acceptance (``mandate_data``) and succeeds at once: nothing is debited, so there is
    nothing to wait for (Stripe, "Save SEPA Direct Debit details for future payments")."""
    from stripe_sandbox import payments

    allowed = seti["payment_method_types"] if seti["automatic_payment_methods"] is None else None
    if allowed and "sepa_debit" not in allowed:
        raise invalid(f"The PaymentMethod provided (sepa_debit) is not allowed for this SetupIntent. Please attach a "
                      f"PaymentMethod of one of the following types: {', '.join(allowed)}.", "payment_method",
                      "setup_intent_invalid_parameter")
    if mandate_data is None:
        raise invalid("A SetupIntent with a sepa_debit PaymentMethod needs the customer's acceptance of a mandate: "
                      "pass mandate_data.", "mandate_data", "parameter_missing")
    mandate = ensure_mandate(sb, pm, mandate_data, off_session=False)
    if seti["customer"] and pm["customer"] != seti["customer"]:
        payments.attach(sb, pm, seti["customer"], validate=False)
    seti.update(status="succeeded", mandate=mandate["id"], next_action=None, last_setup_error=None)
    sb.emit("setup_intent.succeeded", seti)
    return str(seti["status"])


def arm_failure(sb: Sandbox, failure_code: str) -> None:
    if failure_code not in FAILURES:
        raise ValueError(f"failure_code: one of {', '.join(sorted(FAILURES))}")
    sb.store.data.setdefault("sepa_failures", []).append(failure_code)


def next_due(sb: Sandbox) -> int | None:
    dues = [pi["_settles_at"] for pi in sb.store.scoped("payment_intent") if pi.get("_settles_at") and pi["status"] == "processing"]
    return min(dues) if dues else None


def run_due(sb: Sandbox) -> None:
    now = sb.now()
    for pi in sb.store.scoped("payment_intent"):
        if pi.get("_settles_at") and pi["status"] == "processing" and pi["_settles_at"] <= now:
            settle(sb, pi)


def settle(sb: Sandbox, pi: dict[str, Any]) -> None:
    """The bank's answer, days later: the debit succeeds (and may be disputed) or fails."""
    from stripe_sandbox import payments

    pm = sb.store.ref("payment_method", pi["payment_method"])
    charge = sb.store.ref("charge", pi["latest_charge"])
    pi["_settles_at"] = None
    armed = sb.store.data.setdefault("sepa_failures", [])
    behaviour = Iban(pm["_iban"]).behaviour
    failure = armed.pop(0) if armed else ("insufficient_funds" if behaviour == FAIL else None)
    if failure is not None:
        previous = {"status": "pending"}
        charge.update(status="failed", paid=False, captured=False, amount_captured=0, failure_code=failure,
                      failure_message=FAILURES[failure])
        charge["outcome"].update(network_status="declined_by_network", reason=failure, type="issuer_declined",
                                 seller_message="The bank returned a failure for this debit.")
        pi.update(status="requires_payment_method", payment_method=None, last_payment_error={
            "charge": charge["id"], "code": failure, "decline_code": None,
            "doc_url": f"https://stripe.com/docs/error-codes/{failure.replace('_', '-')}", "message": FAILURES[failure],
            "payment_method": sb.view(pm), "type": "invalid_request_error",
        })
        sb.emit("charge.failed", charge, previous)
        sb.emit("payment_intent.payment_failed", pi)
        if failure in ENDS_MANDATE and pm.get("_mandate"):
            end_mandate(sb, sb.store.ref("mandate", pm["_mandate"]))
        payments.invoice_hook(sb, pi, paid=False)
        _checkout_hook(sb, pi, paid=False)
        return
    txn = money.charge_transaction(sb, charge)
    charge.update(status="succeeded", paid=True, balance_transaction=txn["id"])
    pi.update(status="succeeded", amount_received=pi["amount"])
    sb.emit("charge.succeeded", charge, {"status": "pending"})
    sb.emit("payment_intent.succeeded", pi)
    payments.invoice_hook(sb, pi, paid=True)
    _checkout_hook(sb, pi, paid=True)
    if behaviour == DISPUTE:
        money.open_dispute(sb, charge, inquiry=False)


def _checkout_hook(sb: Sandbox, pi: dict[str, Any], *, paid: bool) -> None:
    from stripe_sandbox import checkout

    checkout.after_async_payment(sb, pi, paid=paid)


def payment_method_details(sb: Sandbox, pm: dict[str, Any], mandate: str | None) -> dict[str, Any]:
    details = copy.deepcopy(pm["sepa_debit"])
    details.pop("generated_from", None)
    debit_day = dt.datetime.fromtimestamp(settlement_time(sb.now()), dt.UTC).date().isoformat()
    return {"sepa_debit": {**details, "expected_debit_date": debit_day, "mandate": mandate}, "type": "sepa_debit"}
