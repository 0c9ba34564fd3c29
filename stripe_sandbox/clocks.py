"""Test Clocks (``/v1/test_helpers/test_clocks``): simulated time per customer, as Stripe has them.

A customer created with ``test_clock=clock_…`` (or attached by the clock's ``customer`` at
creation) lives on that clock: whatever a request about it creates (its subscriptions,
invoices, PaymentIntents, charges, refunds, Checkout Sessions, events…) is dated by the
clock's ``frozen_time`` and belongs to the clock (``_clock``), and its renewals, invoice
finalisation, payment retries, expiries and refund failures run only when the clock is
advanced, never with the sandbox's global clock. Payouts belong to the account: a clock's
balance transactions are paid out by the global clock, like the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stripe_sandbox.api import get_or_404, list_response, route
from stripe_sandbox.encoding import Params
from stripe_sandbox.errors import StripeError, invalid
from stripe_sandbox.state import public

if TYPE_CHECKING:
    from stripe_sandbox.sandbox import Sandbox

KIND = "test_helpers.test_clock"
DELETES_AFTER = 7 * 86_400  # Stripe's example: deletes_after = created + 7 days
CUSTOMERS_PER_CLOCK = 3  # Stripe: "up to three customers" per test clock
BASE = "/v1/test_helpers/test_clocks"


def _view(clock: dict[str, Any]) -> dict[str, Any]:
    return public(clock)


def customers_on(sb: Sandbox, clock_id: str) -> list[dict[str, Any]]:
    return [c for c in sb.store.all("customer") if c.get("test_clock") == clock_id and not c.get("_deleted")]


def check_room(sb: Sandbox, clock_id: str, param: str) -> None:
    if len(customers_on(sb, clock_id)) >= CUSTOMERS_PER_CLOCK:
        raise invalid(f"You can add at most {CUSTOMERS_PER_CLOCK} customers to a test clock ({clock_id}).", param)


def clock_of_request(sb: Sandbox, method: str, path: str, params: dict[str, Any]) -> str | None:
    """The test clock a request runs on: that of the customer it creates (``test_clock``), or
    of the first object it names (in its path, then its top-level parameters) that lives on
    one. None: the sandbox's global clock."""
    if path.startswith(BASE):
        return None
    if method == "POST" and path == "/v1/customers" and params.get("test_clock") is not None:
        clock_id = params["test_clock"]
        if not isinstance(clock_id, str) or sb.store.get(KIND, clock_id) is None:
            raise StripeError(400, f"No such test_clock: '{clock_id}'", param="test_clock", code="resource_missing")
        check_room(sb, clock_id, "test_clock")
        return clock_id
    candidates = path.split("/")[2:] + [v for v in params.values() if isinstance(v, str)]
    for ident in candidates:
        found = sb.store.find(ident) if "_" in ident else None
        if found is None:
            continue
        kind, obj = found
        clock_id = obj.get("test_clock") if kind == "customer" else obj.get("_clock")
        if clock_id and sb.store.get(KIND, clock_id) is not None:
            return str(clock_id)
    return None


def advance(sb: Sandbox, clock: dict[str, Any], target: int) -> dict[str, Any]:
    """Run the clock's scheduled work up to ``target`` (renewals, invoices, retries…), in time
    order. Stripe does it asynchronously: the answer says ``advancing``; the clock is ``ready``
    (event ``test_helpers.test_clock.ready``) when its work is done, here before the answer."""
    clock.update(status="advancing", status_details={"advancing": {"target_frozen_time": target}})
    sb.emit("test_helpers.test_clock.advancing", clock)
    answer = _view(clock)
    with sb.on_clock(clock["id"]):
        sb.run_until(target)
    clock.update(status="ready", status_details={}, frozen_time=target)
    sb.emit("test_helpers.test_clock.ready", clock)
    return answer


# routes ---------------------------------------------------------------------


@route("POST", BASE)
def create_clock(sb: Sandbox, p: Params) -> dict[str, Any]:
    p.check_known({"frozen_time", "name", "customer", "expand"})
    frozen = p.int("frozen_time", required=True)
    name = p.str("name")
    if name is not None and len(name) > 300:
        raise invalid("name: at most 300 characters.", "name")
    customer = None
    if customer_id := p.str("customer"):
        customer = get_or_404(sb, "customer", customer_id)
        if customer.get("test_clock"):
            raise invalid(f"Customer {customer_id} is already attached to test clock {customer['test_clock']}.", "customer")
        if any(s["customer"] == customer_id for s in sb.store.all("subscription")) or \
                any(i["customer"] == customer_id for i in sb.store.all("invoice")):
            # the sandbox's rule: objects made before on the global clock cannot move in time
            raise invalid(f"Customer {customer_id} already has subscriptions or invoices: attach a new customer.", "customer")
    now = sb.now()
    clock = {
        "id": sb.store.new_id(KIND),
        "object": KIND,
        "created": now,
        "deletes_after": now + DELETES_AFTER,
        "frozen_time": frozen,
        "livemode": False,
        "name": name,
        "status": "ready",
        "status_details": {},
    }
    sb.store.put(KIND, clock)
    if customer is not None:
        customer["test_clock"] = clock["id"]
        customer["_clock"] = clock["id"]
    sb.emit("test_helpers.test_clock.created", clock)
    return _view(clock)


@route("GET", BASE + "/{ident}")
def get_clock(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    return _view(_find(sb, ident))


@route("GET", BASE)
def list_clocks(sb: Sandbox, p: Params) -> dict[str, Any]:
    return list_response(sb, KIND, p, BASE)


@route("DELETE", BASE + "/{ident}")
def delete_clock(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    """Deleting a clock deletes its customers (and so ends their subscriptions), as Stripe does."""
    clock = _find(sb, ident)
    from stripe_sandbox import billing

    with sb.on_clock(ident):
        for customer in customers_on(sb, ident):
            for sub in sb.store.all("subscription"):
                if sub["customer"] == customer["id"] and sub["status"] in (*billing.LIVE_STATUSES, "incomplete", "paused"):
                    billing.cancel_now(sb, sub)
            customer["_deleted"] = True
            sb.emit("customer.deleted", customer)
    clock["_deleted"] = True
    sb.emit("test_helpers.test_clock.deleted", clock)
    return {"id": ident, "object": KIND, "deleted": True}


@route("POST", BASE + "/{ident}/advance")
def advance_clock(sb: Sandbox, p: Params, ident: str) -> dict[str, Any]:
    p.check_known({"frozen_time", "expand"})
    clock = _find(sb, ident)
    target = p.int("frozen_time", required=True)
    if clock["status"] != "ready":
        raise invalid(f"Test clock {ident} is {clock['status']}: wait until it is ready.", code="test_clock_advancing")
    if target <= clock["frozen_time"]:
        raise invalid(
            f"The frozen_time ({target}) must be after the test clock's current frozen time ({clock['frozen_time']}).", "frozen_time"
        )
    limit = advance_limit(sb, clock)
    if target > limit:
        raise invalid(
            f"The frozen_time ({target}) cannot be more than two intervals in the future from the shortest subscription in this "
            f"test clock (two years without subscriptions): at most {limit}. Advance in several steps.", "frozen_time"
        )
    return advance(sb, clock, target)


def advance_limit(sb: Sandbox, clock: dict[str, Any]) -> int:
    """Stripe's bound on one advance: two intervals of the clock's shortest subscription from
    its frozen time, or two years if it has none."""
    from stripe_sandbox import billing

    frozen = clock["frozen_time"]
    ends = [billing.period_end(frozen, frozen, "year", 2)]
    for sub in sb.store.all("subscription"):
        if sub.get("_clock") == clock["id"] and sub["status"] not in ("canceled", "incomplete_expired"):
            recurring = billing._recurring(sub, sb)
            ends.append(billing.period_end(frozen, frozen, recurring["interval"], 2 * recurring["interval_count"]))
    return min(ends)


def _find(sb: Sandbox, ident: str) -> dict[str, Any]:
    clock = sb.store.get(KIND, ident)
    if clock is None or clock.get("_deleted"):
        raise StripeError(404, f"No such test_clock: '{ident}'", param="id", code="resource_missing")
    return clock
