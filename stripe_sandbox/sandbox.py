"""The ``Sandbox``: state, clock, event emission, scheduled work, faults, webhook delivery."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from stripe_sandbox import billing, checkout, invoices, money, payments, sepa, views, webhooks
from stripe_sandbox.state import Store, public

log = logging.getLogger("stripe_sandbox")
API_VERSION = "2026-10-28.endive"
IDEMPOTENCY_TTL = 24 * 3_600
FAULT_MODES = ("error_500", "error_500_after", "timeout_after", "error_429", "delay_before")

# Scheduled work: (when is something next due, do what is due now), in this order.
SCHEDULE: list[tuple[Callable[[Sandbox], int | None], Callable[[Sandbox], None]]] = [
    (checkout.next_due, checkout.run_due),
    (billing.next_due, billing.run_due),
    (payments.refunds_next_due, payments.run_refund_failures),
    (sepa.next_due, sepa.run_due),
    (money.payouts_next_due, money.run_payouts),
]


class Sandbox:
    """An in-process stand-in for the parts of Stripe's API that the product uses."""

    def __init__(
        self,
        state_path: Path | None = None,
        webhook_url: str | None = None,
        # S107: a public, development-only secret of the offline sandbox, never used with real Stripe.
        webhook_secret: str = "whsec_sandbox_0000000000000000000000000000",  # noqa: S107 (see above)
        public_base: str = "http://127.0.0.1:8000/_sandbox/stripe",
        now: Callable[[], int] | None = None,
        *,
        payout_schedule: str = "daily",
        after_last_failure: str = "unpaid",
        delivery: str | None = None,
        seed: int | None = None,
        webhook_api_version: str | None = None,
        chaos: webhooks.Chaos | None = None,
        upcoming_days: int | None = None,
    ):
        if payout_schedule not in ("daily", "manual"):
            raise ValueError("payout_schedule: 'daily' or 'manual'")
        if after_last_failure not in ("unpaid", "canceled"):
            raise ValueError("after_last_failure: 'unpaid' or 'canceled'")
        self.state_path = Path(state_path) if state_path is not None else None
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.public_base = public_base.rstrip("/")
        self.payout_schedule = payout_schedule
        self.after_last_failure = after_last_failure
        # The account's Billing setting "upcoming renewal events": ``invoice.upcoming`` this many
        # days before each subscription renews (0: not sent); SANDBOX_UPCOMING_DAYS when not given, else 7.
        if upcoming_days is None:
            upcoming_days = int(os.environ.get("SANDBOX_UPCOMING_DAYS") or 7)
        if upcoming_days < 0:
            raise ValueError("upcoming_days: a number of days, 0 or more")
        self.upcoming_days = upcoming_days
        self._base_now = now or time.time
        self.lock = threading.RLock()
        self.store = Store.load(self.state_path) if self.state_path else Store()
        self.faults: list[dict[str, Any]] = []
        self.fault_timeout = 30.0  # how long "timeout_after" holds the answer back ("delay_before": the work)
        self.keys_in_flight: set[str] = set()  # idempotency keys of requests being worked on (a twin gets 409)
        self.request_context: dict[str, Any] | None = None
        self.api_version = API_VERSION
        # Requests refused by parameter validation (unknown or ill-typed parameter): a list of
        # {"method", "path", "code", "param", "message"}, shown at /_admin/refused.
        self.refused: list[dict[str, Any]] = []
        # Webhook delivery: "polite" (once, in order) or "chaos" (delays, duplicates, any order),
        # from SANDBOX_DELIVERY / SANDBOX_SEED when not given; see webhooks.py.
        self.delivery = webhooks.delivery_mode(delivery)
        self.seed = webhooks.delivery_seed(seed)
        self.chaos = chaos or webhooks.Chaos()
        self.webhook_api_version = webhook_api_version or API_VERSION
        self._more_endpoints: list[webhooks.Endpoint] = []
        self._delivery_task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._in_flight: set[tuple[str, int]] = set()
        if self.delivery == "chaos":
            log.info("sandbox webhooks: chaotic delivery, seed %s (SANDBOX_SEED=%s replays it)", self.seed, self.seed)

    # clock -------------------------------------------------------------
    def now(self) -> int:
        """Sandbox time: the frozen time of the test clock in use, else the global clock."""
        if self.store.clock is not None:
            return int(self.store.ref("test_helpers.test_clock", self.store.clock)["frozen_time"])
        return int(self._base_now()) + self.store.clock_offset

    def precise_now(self) -> float:
        """Sandbox time with its fraction of a second (chaotic delivery holds events back that finely)."""
        return self._base_now() + self.store.clock_offset

    def _set_now(self, moment: int) -> None:
        if self.store.clock is not None:
            self.store.ref("test_helpers.test_clock", self.store.clock)["frozen_time"] = moment
            return
        self.store.clock_offset = moment - int(self._base_now())

    @contextlib.contextmanager
    def on_clock(self, clock_id: str | None) -> Iterator[None]:
        """Run on a test clock (None: the global clock): its time, its objects, its scheduled work."""
        with self.lock, self.store_clock(clock_id):
            yield

    def on_clock_of(self, ident: str) -> contextlib.AbstractContextManager[None]:
        """Run on the test clock of the object ``ident`` (a customer's ``test_clock``, or the clock
        another object was made on); the global clock if it has none."""
        found = self.store.find(ident)
        clock = None
        if found is not None:
            kind, obj = found
            clock = obj.get("test_clock") if kind == "customer" else obj.get("_clock")
        if clock is not None and self.store.get("test_helpers.test_clock", clock) is None:
            clock = None
        return self.on_clock(clock)

    def run_until(self, target: int) -> None:
        """Run the scheduled work of the clock in use up to ``target``."""
        with self.lock:
            self._run_until(target)

    def advance_clock(self, seconds: int) -> list[dict[str, Any]]:
        """Move sandbox time forward, running everything that falls due on the way, in time order."""
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        with self.lock:
            first = len(self.store.data["objects"]["event"])
            target = self.now() + int(seconds)
            self._run_until(target)
            self.forget_idempotency_keys()
            self.save()
            return [public(e) for e in list(self.store.data["objects"]["event"].values())[first:]]

    def forget_idempotency_keys(self) -> None:
        """Stripe keeps a key's result for 24 h (of this clock), then forgets the key."""
        with self.lock:
            now = self.now()
            saved = self.store.idempotency
            for key in [k for k, v in saved.items() if v["created"] + IDEMPOTENCY_TTL <= now]:
                del saved[key]

    def tick(self) -> None:
        """Run whatever is due at the current sandbox time."""
        with self.lock:
            before = self.store.data["seq"]
            self._run_until(self.now())
            if self.store.data["seq"] != before:
                self.save()

    def _run_until(self, target: int) -> None:
        for _ in range(100_000):
            dues = [d for d in (next_due(self) for next_due, _ in SCHEDULE) if d is not None]
            moment = min(dues) if dues else None
            if moment is None or moment > target:
                break
            if moment > self.now():
                self._set_now(moment)
            try:
                for _, run in SCHEDULE:
                    run(self)
            except Exception:  # a sandbox bug: keep the clock and the API usable, say so loudly
                log.exception("sandbox scheduled work failed at %s", self.now())
                break
        else:  # pragma: no cover - a scheduling bug, not a user error
            log.error("sandbox scheduler made no progress; stopping at %s", self.now())
        if target > self.now():
            self._set_now(target)

    # objects and events --------------------------------------------------
    def url(self, path: str) -> str:
        return f"{self.public_base}{path}"

    # Settlement flows upwards: a PaymentIntent settles its invoice, an invoice its subscription.
    # The lower modules call these instead of importing the higher ones (no import cycle).
    def invoice_attempted(self, pi: dict[str, Any], *, paid: bool) -> None:
        invoices.after_invoice_attempt(self, pi, paid=paid)

    def subscription_invoice_paid(self, subscription: dict[str, Any], invoice: dict[str, Any]) -> None:
        billing.after_invoice_paid(self, subscription, invoice)

    def subscription_invoice_failed(self, subscription: dict[str, Any], invoice: dict[str, Any], *, exhausted: bool) -> None:
        billing.after_invoice_failed(self, subscription, invoice, exhausted=exhausted)

    def view(self, obj: dict[str, Any]) -> dict[str, Any]:
        return views.view(self, obj)

    def emit(self, type: str, obj: dict[str, Any], previous: dict[str, Any] | None = None) -> dict[str, Any]:
        event = webhooks.create_event(self, type, obj, previous)
        delivery = event.get("_delivery")
        if self.store.clock is not None and delivery and "next_at" in delivery:
            # Dated by its test clock, but delivered in the global clock's time: shift the delivery
            # schedule (and any delay it holds) from the one clock to the other.
            clock_now = self.now()
            with self.store_clock(None):
                delivery["next_at"] = delivery["next_at"] - clock_now + self.now()
        self._wake_delivery()
        return event

    @contextlib.contextmanager
    def store_clock(self, clock_id: str | None) -> Iterator[None]:
        previous, self.store.clock = self.store.clock, clock_id
        try:
            yield
        finally:
            self.store.clock = previous

    @property
    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [public(e) for e in self.store.data["objects"]["event"].values()]

    def save(self) -> None:
        if self.state_path is not None:
            with self.lock:
                self.store.save(self.state_path)

    # faults --------------------------------------------------------------
    def inject_fault(self, method: str, path_prefix: str, mode: str, count: int = 1) -> None:
        """Make the next ``count`` matching API calls fail (``method`` may be ``*``)."""
        if mode not in FAULT_MODES:
            raise ValueError(f"fault mode must be one of {', '.join(FAULT_MODES)}")
        if not path_prefix.startswith("/"):
            path_prefix = "/" + path_prefix
        with self.lock:
            self.faults.append({"method": method.upper(), "path_prefix": path_prefix, "mode": mode, "count": int(count)})

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def take_fault(self, method: str, path: str) -> str | None:
        with self.lock:
            for fault in self.faults:
                if fault["method"] in ("*", method.upper()) and path.startswith(fault["path_prefix"]) and fault["count"] > 0:
                    fault["count"] -= 1
                    if fault["count"] == 0:
                        self.faults.remove(fault)
                    return fault["mode"]
        return None

    # webhook delivery ----------------------------------------------------
    @property
    def endpoints(self) -> list[webhooks.Endpoint]:
        """The webhook endpoints, in order: ``webhook_url``'s first, then those added."""
        first = [webhooks.Endpoint(self.webhook_url, self.webhook_secret, self.webhook_api_version)] if self.webhook_url else []
        return first + self._more_endpoints

    def add_webhook_endpoint(self, url: str, secret: str | None = None, api_version: str | None = None) -> None:
        """Another endpoint that receives every event from now on (its own secret and API version)."""
        self._more_endpoints.append(webhooks.Endpoint(url, secret or self.webhook_secret, api_version or self.webhook_api_version))

    async def deliver_pending(self) -> int:
        """Deliver every event whose delivery is due now; returns how many were acknowledged (2xx)."""
        return await webhooks.deliver_due(self)

    def start_delivery(self, interval: float = 0.5) -> None:
        """Deliver events (with retries) and run scheduled work in a background asyncio task:
        woken by each new event, else when the next delivery falls due, at least every ``interval``."""
        if self._delivery_task is not None and not self._delivery_task.done():
            return
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._delivery_task = self._loop.create_task(self._delivery_loop(interval))

    async def stop_delivery(self) -> None:
        task, self._delivery_task = self._delivery_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _wake_delivery(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and self._delivery_task is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop is closing: its last pass will see the event
                loop.call_soon_threadsafe(wake.set)

    async def _delivery_loop(self, interval: float) -> None:
        wake = self._wake or asyncio.Event()
        while True:
            try:
                self.tick()
                await self.deliver_pending()
                with self.lock:
                    due = webhooks.next_due(self)
            except asyncio.CancelledError:
                raise
            except Exception:  # keep delivering whatever one failure was
                log.exception("sandbox delivery loop")
                due = None
            wait = interval if due is None else min(interval, max(0.0, due - self.precise_now()))
            # Not asyncio.wait_for: on Python 3.11 it drops a cancel that lands as the event fires
            # (CPython gh-86296), and the loop would then outlive its shutdown.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await wake.wait()
            wake.clear()
